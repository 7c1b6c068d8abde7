//! Cairn's service: the AWS JSON 1.1 protocol with SigV4 authentication, CloudTrail's
//! operations, the recording of every call as a CloudTrail event, and configuration.

pub mod admission;
pub mod api;
pub mod app;
pub mod audit;
pub mod audit_events;
pub mod authz;
pub mod buckets;
pub mod bulk;
pub mod config;
pub mod delivery;
pub mod insights;
pub mod keys;
pub mod loggroups;
pub mod ops;
pub mod policy;
pub mod records;
pub mod sigv4;
pub mod tags;
pub mod tasks;
pub mod token;
pub mod trails;

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_store::{Store, StoreOptions};

pub use config::{Config, ConfigError, Settings};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the data directory {dir}: {source}")]
    Store {
        dir: String,
        source: cairn_store::StoreError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The lines a newcomer copies to point the AWS CLI at this server.
pub fn banner(settings: &Settings) -> String {
    let endpoint = format!("http://{}", settings.listen);
    let mut out = format!(
        "Cairn is listening on {endpoint} (data in {})\n",
        settings.data_dir.display()
    );
    if settings.generated_credentials {
        if let Some(c) = settings.credentials.first() {
            out.push_str(&format!(
                "\nAccount {} with user {} (credentials kept in {}):\n\n  export AWS_ACCESS_KEY_ID={}\n  export AWS_SECRET_ACCESS_KEY={}\n  export AWS_DEFAULT_REGION={}\n",
                c.account_id,
                c.user_name,
                settings.data_dir.join("accounts.toml").display(),
                c.access_key_id,
                c.secret_access_key,
                settings.region
            ));
        }
    } else {
        out.push_str(&format!(
            "\n{} access key(s) configured. Point the AWS CLI at Cairn with one of them:\n",
            settings.credentials.len()
        ));
    }
    out.push_str(&format!(
        "\nTry it:\n\n  aws --endpoint-url {endpoint} cloudtrail lookup-events --max-results 5\n"
    ));
    out
}

/// A server that has opened its store and bound its port, ready to run.
pub struct Server {
    app: Arc<app::App>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Opens the store and binds the listen address.
    pub async fn start(mut settings: Settings) -> Result<Server, ServeError> {
        let store_dir = settings.data_dir.clone();
        let store =
            tokio::task::spawn_blocking(move || Store::open(&store_dir, StoreOptions::default()))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .map_err(|source| ServeError::Store {
                    dir: settings.data_dir.display().to_string(),
                    source,
                })?;
        let tokens = token::TokenKey::load_or_create(&settings.data_dir.join("token.key"))?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: settings.listen,
                source,
            })?;
        // With port 0 the system picks one; report the real address.
        settings.listen = listener.local_addr()?;
        let meta =
            cairn_store::MetaStore::open(&settings.data_dir.join("meta")).map_err(|source| {
                ServeError::Store {
                    dir: settings.data_dir.display().to_string(),
                    source,
                }
            })?;
        loggroups::install_cis_pack(&meta, &settings.cis, app::now() * 1000).map_err(|source| {
            ServeError::Store {
                dir: settings.data_dir.display().to_string(),
                source,
            }
        })?;
        let buckets = match &settings.s3 {
            Some(s3) => buckets::Buckets::s3(s3.clone()),
            None => buckets::Buckets::local(settings.data_dir.join("buckets")),
        };
        for bucket in &settings.buckets {
            buckets
                .create_local(bucket)
                .map_err(|e| std::io::Error::other(format!("creating bucket {bucket}: {e}")))?;
        }
        let delivery = delivery::Delivery::open(
            &settings.data_dir,
            store.committed_seq(),
            std::time::Duration::from_millis(settings.delivery.interval_ms),
            settings.delivery.max_file_bytes,
        )?;
        let keys = keys::Keys::new(
            &settings.data_dir,
            i64::from(settings.digests.key_rotation_days) * 86_400,
        );
        let alarms = loggroups::alarms::Alarms::new(
            settings.alarms.clone(),
            format!("http://{}", settings.listen),
        )
        .with_state(settings.data_dir.join("logs").join("alarms.json"));
        let log_groups =
            loggroups::LogGroups::open(&settings.data_dir, store.committed_seq(), alarms)?;
        let insights = insights::Insights::open(
            &settings.data_dir,
            store.committed_seq(),
            cairn_insights::Params {
                learning_minutes: settings.insights.learning_minutes,
                keep_counts: true,
                ..cairn_insights::Params::default()
            },
        )?;
        let insights_webhook = insights::webhook::Webhook::open(
            &settings.data_dir,
            settings.insights.webhook.clone(),
        )?;
        let app = Arc::new(app::App {
            admission: admission::Admission::new(settings.max_inflight_bytes),
            settings,
            store: Arc::new(store),
            meta,
            tokens,
            ingestion: Default::default(),
            buckets,
            delivery,
            log_groups,
            insights,
            insights_webhook,
            keys,
            webhooks: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| std::io::Error::other(format!("HTTP client: {e}")))?,
        });
        // The journal stays until delivery, log groups and Insights are past it.
        app.release_journal();
        Ok(Server { app, listener })
    }

    pub fn settings(&self) -> &Settings {
        &self.app.settings
    }

    /// The service state requests are handled against, for driving [`app::handle`]
    /// in-process (the fuzz targets do).
    pub fn app(&self) -> Arc<app::App> {
        self.app.clone()
    }

    /// Serves until `shutdown` completes; then finishes requests in flight and flushes
    /// the history.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server { app, listener } = self;
        let retention = tokio::spawn(expire_history(app.clone()));
        let (stop_insights, insights_stopped) = tokio::sync::watch::channel(false);
        let insights = tokio::spawn(insights::Insights::run(app.clone(), insights_stopped));
        let (stop_delivery, stopped) = tokio::sync::watch::channel(false);
        let delivery = tokio::spawn(delivery::Delivery::run(app.clone(), stopped.clone()));
        let insights_webhook = tokio::spawn(insights::webhook::Webhook::run(
            app.clone(),
            stopped.clone(),
        ));
        let alarms = tokio::spawn(loggroups::alarms::Alarms::run(app.clone(), stopped.clone()));
        let log_groups = tokio::spawn(loggroups::LogGroups::run(app.clone(), stopped));
        let router = axum::Router::new()
            .fallback(app::handle)
            .with_state(app.clone());
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        retention.abort();
        // Insights decided at shutdown are recorded first; then a last delivery writes
        // what was recorded before shutdown.
        let _ = stop_insights.send(true);
        let _ = insights.await;
        let _ = stop_delivery.send(true);
        let _ = delivery.await;
        let _ = log_groups.await;
        let _ = insights_webhook.await;
        let _ = alarms.await;
        // The last pass of the log groups counted values after the alarms' last save.
        if let Err(error) = app.log_groups.metrics.alarms.save(true) {
            tracing::error!(%error, "the alarms' state could not be saved at shutdown");
        }
        let store = app.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(())
    }
}

/// Drops history days older than the retention window, and log events older than their
/// group's, at start and then hourly.
async fn expire_history(app: Arc<app::App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let keep_from = app::now() - i64::from(app.settings.retention_days) * 86_400;
        let first_day = cairn_core::timefmt::day_of(keep_from);
        let store = app.store.clone();
        match tokio::task::spawn_blocking(move || store.drop_before(first_day)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(days)) => tracing::info!(days, "expired history days past retention"),
            Ok(Err(error)) => tracing::error!(%error, "expiring history failed; will retry"),
            Err(_) => {}
        }
        let logs = app.clone();
        let _ =
            tokio::task::spawn_blocking(move || logs.log_groups.expire(&logs, app::now())).await;
        let insights = app.clone();
        match tokio::task::spawn_blocking(move || insights.insights.expire_metrics(app::now()))
            .await
        {
            Ok(Ok(0)) | Err(_) => {}
            Ok(Ok(days)) => tracing::info!(days, "expired Insights metrics days"),
            Ok(Err(error)) => {
                tracing::error!(%error, "expiring Insights metrics failed; will retry")
            }
        }
    }
}
