//! Journal recovery: a journal written by Cairn, then cut short and damaged anywhere,
//! reopened. A cut alone must recover every whole frame before it; damage may be
//! reported, but whatever is read back (records and their summaries) must be exactly
//! what was written there.

#![no_main]

use arbitrary::Arbitrary;
use cairn_store::journal::{Entry, Journal, JournalReader};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Frames of (record, summary), appended in order.
    frames: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Where the segment is cut, as a fraction of its length (none: not cut).
    cut: Option<u16>,
    /// Bytes flipped: (position as a fraction of the length, bits to flip).
    damage: Vec<(u16, u8)>,
}

fn fraction(of: u16, len: usize) -> usize {
    (usize::from(of) * len) / (usize::from(u16::MAX) + 1)
}

fuzz_target!(|input: Input| {
    let dir = cairn_fuzz::scratch_dir();
    let mut written: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Where each frame ends in the segment, and how many records precede that end.
    let mut ends: Vec<(usize, usize)> = Vec::new();
    {
        let mut journal = Journal::open(dir.path(), 0).expect("a new journal");
        for frame in input.frames.iter().filter(|f| !f.is_empty()).take(16) {
            let entries: Vec<Entry<'_>> = frame
                .iter()
                .take(16)
                .map(|(record, summary)| Entry { record, summary })
                .collect();
            journal.append(&entries).expect("appended");
            written.extend(frame.iter().take(16).cloned());
            ends.push((journal.disk_bytes() as usize, written.len()));
        }
    }
    let segment = std::fs::read_dir(dir.path())
        .expect("the journal directory")
        .map(|e| e.expect("an entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("one segment");
    let mut bytes = std::fs::read(&segment).expect("the segment");
    if let Some(cut) = input.cut {
        bytes.truncate(fraction(cut, bytes.len() + 1));
    }
    let damaged = !bytes.is_empty() && !input.damage.is_empty();
    if !bytes.is_empty() {
        for &(at, bits) in &input.damage {
            let len = bytes.len();
            bytes[fraction(at, len)] ^= bits;
        }
    }
    std::fs::write(&segment, &bytes).expect("the damaged segment written");

    let journal = match Journal::open(dir.path(), 0) {
        Ok(journal) => journal,
        Err(error) => {
            assert!(damaged, "an undamaged journal failed to open: {error}");
            return;
        }
    };
    let mut read: Vec<(u64, Vec<u8>)> = Vec::new();
    let visited = journal.read_from(0, |seq, record| {
        read.push((seq, record.to_vec()));
        Ok(())
    });
    for (seq, record) in &read {
        assert_eq!(
            Some(record),
            written.get(*seq as usize).map(|(record, _)| record),
            "event {seq} reads back as something never written there"
        );
    }
    let mut reader = JournalReader::new(dir.path(), 0);
    let mut streamed = Vec::new();
    let until = journal.next_seq();
    let _ = reader.read(until, usize::MAX, |seq, entry| {
        streamed.push((seq, (entry.record.to_vec(), entry.summary.to_vec())))
    });
    for (seq, entry) in &streamed {
        assert_eq!(Some(entry), written.get(*seq as usize));
    }
    if !damaged {
        // A cut keeps exactly the frames wholly before it.
        visited.expect("a cut journal reads");
        let kept = ends
            .iter()
            .take_while(|(end, _)| *end <= bytes.len())
            .last()
            .map_or(0, |&(_, records)| records);
        assert_eq!(read.len(), kept);
        assert_eq!(journal.next_seq(), kept as u64);
        let streamed_records: Vec<(u64, Vec<u8>)> = streamed
            .into_iter()
            .map(|(seq, (record, _))| (seq, record))
            .collect();
        assert_eq!(streamed_records, read);
    }
});
