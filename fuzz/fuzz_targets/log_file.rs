//! Files of CloudTrail records as `cairn import` reads them (gzip or not; a log file's
//! Records, a JSON array or NDJSON), each record checked as the bulk endpoint checks it.

#![no_main]

use cairn_core::json::minify;
use cairn_core::logfile::{records_of, text_of};
use cairn_core::IndexFields;
use cairn_server::records::{self, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = text_of(data.to_vec()) else {
        return;
    };
    let Ok(raws) = records_of(&text) else {
        return;
    };
    let policy = Policy {
        may_write_for: &|_| true,
        // 1970 to 2100: the window does not matter here.
        oldest: 0,
        newest: 4_102_444_800,
    };
    for raw in raws {
        if let Ok(event) = records::check(raw.get(), &policy) {
            // The history re-reads stored records when it replays the journal, and
            // lookups by event id re-read them: what the check accepted must read back
            // the same, and be the record as sent without its whitespace.
            assert_eq!(event.record, minify(raw.get()).into_bytes());
            let reread =
                IndexFields::extract(&event.record).expect("an accepted record reads back");
            assert_eq!(reread, event.fields);
            // Routing and Insights read the summary built in the check's own parse: it
            // must be what they would read from the stored record.
            assert_eq!(
                cairn_core::summary::read(&event.record).as_deref(),
                Ok(event.summary.as_slice())
            );
        }
    }
});
