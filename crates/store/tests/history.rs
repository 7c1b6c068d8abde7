//! The store against a simple model: every lookup must return exactly what a filter and
//! sort over all appended events returns, before and after flushes, compaction, restarts
//! and expiry.

use cairn_core::timefmt::{day_of, format_event_time, SECONDS_PER_DAY};
use cairn_core::LookupKey;
use cairn_store::history::HistoryOptions;
use cairn_store::{Cursor, Event, LookupQuery, Store, StoreOptions};

const DAY0: i64 = 20_000 * SECONDS_PER_DAY;

struct Model {
    events: Vec<(Cursor, Vec<u8>, cairn_core::IndexFields)>,
}

fn record(i: u64, time: i64, account: &str, region: &str, category: &str) -> Vec<u8> {
    let names = [
        "DescribeTrails",
        "CreateTrail",
        "LookupEvents",
        "DeleteTrail",
    ];
    let users = ["alice", "bob", "carol"];
    let name = names[(i % 4) as usize];
    let user = users[(i % 3) as usize];
    format!(
        r#"{{"eventVersion":"1.11","userIdentity":{{"type":"IAMUser","principalId":"AIDA{i}","arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}","accessKeyId":"AKIA{user}","userName":"{user}"}},"eventTime":"{}","eventSource":"cloudtrail.amazonaws.com","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"127.0.0.1","requestParameters":null,"responseElements":null,"eventID":"id-{i}","readOnly":{},"resources":[{{"accountId":"{account}","type":"AWS::CloudTrail::Trail","ARN":"arn:aws:cloudtrail:{region}:{account}:trail/t{}"}}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"{category}"}}"#,
        format_event_time(time),
        i.is_multiple_of(2),
        i % 150
    )
    .into_bytes()
}

fn options(memtable_bytes: usize) -> StoreOptions {
    StoreOptions {
        history: HistoryOptions {
            memtable_bytes,
            compaction_fanout: 3,
        },
        ..StoreOptions::default()
    }
}

/// A deterministic spread of events: several days, two accounts, two regions, some data
/// events, out-of-order times, many equal seconds.
fn generate(store: &Store, model: &mut Model, from: u64, count: u64) {
    let mut batch = Vec::new();
    for i in from..from + count {
        let time = DAY0 + ((i * 7919) % (4 * SECONDS_PER_DAY as u64)) as i64 / 600 * 600;
        let account = if i % 7 == 0 {
            "222222222222"
        } else {
            "111111111111"
        };
        let region = if i % 3 == 0 { "eu-west-1" } else { "us-east-1" };
        let category = if i % 11 == 0 { "Data" } else { "Management" };
        batch.push(Event::from_record(record(i, time, account, region, category)).unwrap());
        if batch.len() == 25 {
            append(store, model, std::mem::take(&mut batch));
        }
    }
    append(store, model, batch);
}

fn append(store: &Store, model: &mut Model, batch: Vec<Event>) {
    let copies: Vec<_> = batch
        .iter()
        .map(|e| (e.record.clone(), e.fields.clone()))
        .collect();
    let appended = store.append_blocking(batch).unwrap();
    for (k, (record, fields)) in copies.into_iter().enumerate() {
        let cursor = Cursor {
            time: fields.time,
            seq: appended.stored[k].expect("a new event"),
        };
        model.events.push((cursor, record, fields));
    }
}

fn expected(model: &Model, q: &LookupQuery) -> Vec<(Cursor, Vec<u8>)> {
    let mut found: Vec<_> = model
        .events
        .iter()
        .filter(|(c, _, f)| {
            f.view() == cairn_core::View::Management
                && f.account == q.account
                && f.region == q.region
                && c.time >= q.start
                && c.time <= q.end
                && q.after.is_none_or(|a| *c < a)
                && q.attribute.as_ref().is_none_or(|(k, v)| f.matches(*k, v))
        })
        .map(|(c, r, _)| (*c, r.clone()))
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.truncate(q.limit);
    found
}

fn queries() -> Vec<LookupQuery> {
    let mut out = Vec::new();
    let attributes = [
        None,
        Some((LookupKey::EventName, "CreateTrail")),
        Some((LookupKey::ReadOnly, "true")),
        Some((LookupKey::Username, "bob")),
        Some((LookupKey::AccessKeyId, "AKIAcarol")),
        Some((LookupKey::EventSource, "cloudtrail.amazonaws.com")),
        Some((LookupKey::ResourceType, "AWS::CloudTrail::Trail")),
        Some((
            LookupKey::ResourceName,
            "arn:aws:cloudtrail:us-east-1:111111111111:trail/t3",
        )),
        Some((LookupKey::EventId, "id-40")),
        Some((LookupKey::EventName, "NoSuchEvent")),
    ];
    for (account, region) in [("111111111111", "us-east-1"), ("222222222222", "eu-west-1")] {
        for attribute in &attributes {
            for (start, end) in [
                (0, i64::MAX / 2),
                (DAY0 + 3600, DAY0 + SECONDS_PER_DAY + 7200),
            ] {
                out.push(LookupQuery {
                    account: account.into(),
                    region: region.into(),
                    insights: false,
                    start,
                    end,
                    attribute: attribute.map(|(k, v)| (k, v.to_owned())),
                    after: None,
                    limit: 7,
                });
            }
        }
    }
    out
}

/// Pages through every query and compares each page with the model.
fn check_all(store: &Store, model: &Model) {
    for mut q in queries() {
        let mut pages = 0;
        loop {
            let want = expected(model, &q);
            let got: Vec<_> = store
                .lookup(&q)
                .unwrap()
                .into_iter()
                .map(|h| (h.cursor, h.record))
                .collect();
            assert_eq!(got.len(), want.len(), "query {q:?}");
            if got != want {
                let g: Vec<_> = got.iter().map(|x| x.0).collect();
                let w: Vec<_> = want.iter().map(|x| x.0).collect();
                panic!("query {q:?} differs from the model:\n got  {g:?}\n want {w:?}");
            }
            if got.len() < q.limit {
                break;
            }
            q.after = Some(got.last().unwrap().0);
            pages += 1;
            assert!(pages < 1000);
        }
    }
}

#[test]
fn lookups_match_the_model_through_flushes_compaction_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model { events: Vec::new() };
    {
        let store = Store::open(dir.path(), options(64 << 10)).unwrap();
        generate(&store, &mut model, 0, 1500);
        check_all(&store, &model); // some in memory, some in runs
        store.flush().unwrap();
        check_all(&store, &model);
        store.compact().unwrap();
        // Small runs are all one tier: with fanout 3, a compacted day keeps at most 2.
        let stats = store.stats().history;
        assert!(
            stats.runs <= stats.days * 2,
            "{} runs over {} days",
            stats.runs,
            stats.days
        );
        check_all(&store, &model);
        generate(&store, &mut model, 1500, 700);
        check_all(&store, &model);
        let stats = store.stats();
        assert!(stats.history.runs > 0);
    }
    // Restart: runs from the manifest, the rest replayed from the journal.
    let store = Store::open(dir.path(), options(64 << 10)).unwrap();
    check_all(&store, &model);
    generate(&store, &mut model, 2200, 300);
    check_all(&store, &model);
}

#[test]
fn a_merge_of_runs_holding_different_groups_keeps_every_posting() {
    // Each flushed run holds one (account, region) pair, the last one two, so a group's
    // number differs between the inputs of the merge and the merged run.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options(1 << 30)).unwrap();
    let mut model = Model { events: Vec::new() };
    let pairs = [
        ("222222222222", "eu-west-1"),
        ("111111111111", "us-east-1"),
        ("111111111111", "eu-west-1"),
    ];
    for (run, (account, region)) in pairs.iter().enumerate() {
        let mut batch = Vec::new();
        for i in 0..60u64 {
            let i = run as u64 * 100 + i;
            let time = DAY0 + (i as i64 % 50) * 60;
            batch.push(Event::from_record(record(i, time, account, region, "Management")).unwrap());
            if run == 2 && i.is_multiple_of(2) {
                let j = i + 1000;
                batch.push(
                    Event::from_record(record(j, time, "222222222222", "eu-west-1", "Management"))
                        .unwrap(),
                );
            }
        }
        append(&store, &mut model, batch);
        store.flush().unwrap();
    }
    assert_eq!(store.stats().history.runs, 3);
    store.compact().unwrap();
    assert_eq!(store.stats().history.runs, 1);
    check_all(&store, &model);
}

#[test]
fn a_day_whose_merge_fails_does_not_hold_up_the_next_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options(1 << 30)).unwrap();
    let mut model = Model { events: Vec::new() };
    // Three runs in each of two days: with fanout 3, each day has one merge due.
    for run in 0..3u64 {
        let batch = (0..40u64)
            .flat_map(|i| {
                let i = run * 100 + i;
                [DAY0, DAY0 + SECONDS_PER_DAY].map(|day| {
                    let i = i + if day == DAY0 { 0 } else { 10_000 };
                    Event::from_record(record(
                        i,
                        day + 60,
                        "111111111111",
                        "us-east-1",
                        "Management",
                    ))
                    .unwrap()
                })
            })
            .collect();
        append(&store, &mut model, batch);
        store.flush().unwrap();
    }
    assert_eq!(store.stats().history.runs, 6);
    // Damage a block of one of the first day's runs: its merge, tried first, fails.
    let first_day = std::fs::read_dir(dir.path().join("history"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .min()
        .unwrap();
    let run = std::fs::read_dir(&first_day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&run).unwrap();
    for b in &mut bytes[16..64] {
        *b ^= 0x5a;
    }
    std::fs::write(&run, bytes).unwrap();
    assert!(store.compact().is_err());
    assert_eq!(store.stats().history.runs, 6);
    // The next round passes over the failed day first: the second day is merged.
    assert!(store.compact().is_err());
    assert_eq!(store.stats().history.runs, 4);
}

#[test]
fn unflushed_events_survive_a_restart_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let mut model = Model { events: Vec::new() };
    let store = Store::open(dir.path(), options(1 << 30)).unwrap();
    generate(&store, &mut model, 0, 400);
    // A copy taken now is what a crash leaves: the events are only in the journal.
    copy_tree(dir.path(), crashed.path());
    drop(store);

    let store = Store::open(crashed.path(), options(1 << 30)).unwrap();
    check_all(&store, &model);
    store.flush().unwrap();
    drop(store);
    let store = Store::open(crashed.path(), options(1 << 30)).unwrap();
    check_all(&store, &model);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_data_directory_opens_in_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let err = Store::open(dir.path(), StoreOptions::default())
        .err()
        .expect("second open refused");
    assert!(err.message.contains("in use"), "{err}");
    drop(store);
    Store::open(dir.path(), StoreOptions::default()).unwrap();
}

#[test]
fn expiring_days_drops_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model { events: Vec::new() };
    let store = Store::open(dir.path(), options(32 << 10)).unwrap();
    generate(&store, &mut model, 0, 1000);
    store.flush().unwrap();
    let days_before = store.stats().history.days;
    let cut = day_of(DAY0) + 2;
    assert_eq!(store.drop_before(cut).unwrap(), 2);
    assert_eq!(store.stats().history.days, days_before - 2);
    model.events.retain(|(c, _, _)| day_of(c.time) >= cut);
    check_all(&store, &model);
    drop(store);
    let store = Store::open(dir.path(), options(32 << 10)).unwrap();
    store.drop_before(cut).unwrap();
    check_all(&store, &model);
    assert!(!dir
        .path()
        .join("history")
        .join(cairn_core::timefmt::day_label(day_of(DAY0)))
        .exists());
}

#[test]
fn concurrent_appenders_share_commits_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let n = t * 1000 + i;
                    let e = Event::from_record(record(
                        n,
                        DAY0 + n as i64,
                        "111111111111",
                        "us-east-1",
                        "Management",
                    ))
                    .unwrap();
                    store.append_blocking(vec![e]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let q = LookupQuery {
        account: "111111111111".into(),
        region: "us-east-1".into(),
        insights: false,
        start: 0,
        end: i64::MAX / 2,
        attribute: None,
        after: None,
        limit: 1000,
    };
    let hits = store.lookup(&q).unwrap();
    assert_eq!(hits.len(), 400);
    let mut seqs: Vec<u64> = hits.iter().map(|h| h.cursor.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 400);
}

#[test]
fn an_event_id_is_stored_once_per_account_wherever_the_original_is() {
    let dir = tempfile::tempdir().unwrap();
    let event = |i: u64, account: &str| {
        Event::from_record(record(
            i,
            DAY0 + i as i64 * 60,
            account,
            "us-east-1",
            "Management",
        ))
        .unwrap()
    };
    let stored =
        |appended: cairn_store::Appended| appended.stored.iter().filter(|s| s.is_some()).count();
    {
        let store = Store::open(dir.path(), options(32 << 10)).unwrap();
        let first = store
            .append_blocking((0..300).map(|i| event(i, "111111111111")).collect())
            .unwrap();
        assert_eq!(stored(first), 300);
        // In memory.
        assert_eq!(
            stored(
                store
                    .append_blocking(vec![event(5, "111111111111")])
                    .unwrap()
            ),
            0
        );
        // Within one batch, the first occurrence wins.
        let batch = vec![event(1000, "111111111111"), event(1000, "111111111111")];
        assert_eq!(
            store
                .append_blocking(batch)
                .unwrap()
                .stored
                .iter()
                .filter(|s| s.is_some())
                .count(),
            1
        );
        // Another account may use the same eventID.
        assert_eq!(
            stored(
                store
                    .append_blocking(vec![event(5, "222222222222")])
                    .unwrap()
            ),
            1
        );
        store.flush().unwrap();
        store.compact().unwrap();
        // In runs.
        let again = store
            .append_blocking((0..300).map(|i| event(i, "111111111111")).collect())
            .unwrap();
        assert_eq!(stored(again), 0);
    }
    // After a restart, from runs and from the replayed journal alike.
    let store = Store::open(dir.path(), options(32 << 10)).unwrap();
    assert_eq!(
        stored(
            store
                .append_blocking((0..300).map(|i| event(i, "111111111111")).collect())
                .unwrap()
        ),
        0
    );
    assert_eq!(
        stored(
            store
                .append_blocking(vec![event(1000, "111111111111")])
                .unwrap()
        ),
        0
    );
    assert_eq!(
        stored(
            store
                .append_blocking(vec![event(301, "111111111111")])
                .unwrap()
        ),
        1
    );
}

/// The eventIDs a journal reader from the start visits.
fn read_ids(store: &Store) -> Vec<String> {
    let mut ids = Vec::new();
    store
        .journal_reader(1)
        .read(store.committed_seq(), usize::MAX, |_, entry| {
            let value: serde_json::Value = serde_json::from_slice(entry.record).unwrap();
            ids.push(value["eventID"].as_str().unwrap().to_owned());
        })
        .unwrap();
    ids
}

#[test]
fn journal_readers_pass_over_history_only_events_which_lookups_still_find() {
    let dir = tempfile::tempdir().unwrap();
    let events = |from: u64, to: u64| -> Vec<Event> {
        (from..to)
            .map(|i| {
                let record = record(
                    i,
                    DAY0 + i as i64,
                    "111111111111",
                    "us-east-1",
                    "Management",
                );
                Event::from_record(record).unwrap()
            })
            .collect()
    };
    let ids = |from: u64, to: u64| (from..to).map(|i| format!("id-{i}")).collect::<Vec<_>>();
    let all = LookupQuery {
        account: "111111111111".into(),
        region: "us-east-1".into(),
        insights: false,
        start: DAY0,
        end: DAY0 + SECONDS_PER_DAY,
        attribute: None,
        after: None,
        limit: 1000,
    };
    {
        let store = Store::open(dir.path(), options(32 << 10)).unwrap();
        store.append_blocking(events(0, 10)).unwrap();
        store.begin_history_only().unwrap();
        store.append_blocking(events(10, 20)).unwrap();
        store.append_blocking(events(20, 30)).unwrap();
        store.end_history_only().unwrap();
        store.append_blocking(events(30, 35)).unwrap();
        assert_eq!(read_ids(&store), [ids(0, 10), ids(30, 35)].concat());
        assert_eq!(store.lookup(&all).unwrap().len(), 35);
        // An import that stops before it ends its range.
        store.begin_history_only().unwrap();
        store.append_blocking(events(35, 40)).unwrap();
        store.close();
    }
    let store = Store::open(dir.path(), options(32 << 10)).unwrap();
    store.append_blocking(events(40, 42)).unwrap();
    assert_eq!(
        read_ids(&store),
        [ids(0, 10), ids(30, 35), ids(40, 42)].concat()
    );
    assert_eq!(store.lookup(&all).unwrap().len(), 42);
}
