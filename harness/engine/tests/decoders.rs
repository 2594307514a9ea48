//! Every decoder of bytes that come from a target, under generated input:
//! length prefixes, JSON headers and their size field, process output and
//! `/proc` text, and the display of received bytes. None may panic, and
//! none may allocate more than a small multiple of its input, whatever a
//! header claims.
//!
//! `PROPTEST_CASES=N` sets the cases per property (proptest's default is
//! 256); `make fuzz` runs them long.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sockspec_engine::judge::frame::{decode_header, size_field, Decoded, PrefixFormat, MAX_HEADER};
use sockspec_engine::judge::show;
use sockspec_engine::kernel::procfs::{parse_schedstat, parse_stat, parse_task_status};
use sockspec_engine::kernel::sockdiag;
use sockspec_engine::targets::target::Capture;

/// Counts the bytes each thread allocates, so a property can bound what
/// one decoder call costs while other tests run on other threads.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    /// Whole headers decoded, so the properties are seen to reach them.
    static DECODED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the count is a thread-local
// integer with no destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + new));
        System.realloc(ptr, layout, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated on this thread while running `f`.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    (out, ALLOCATED.with(Cell::get) - before)
}

/// What a decoder may allocate for an input of `len` bytes: a few copies
/// of it (JSON values, escaped text) and a constant.
fn budget(len: usize) -> usize {
    16 * len + 64 * 1024
}

/// A JSON object of a few fields, values of every kind, keys as the
/// assignments spell them and others.
fn json_object() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("size".to_string()),
        Just("data_size".to_string()),
        Just("filename".to_string()),
        "[a-z_\u{4e00}-\u{4e10}]{1,9}",
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        "[^\"\\\\]{0,12}".prop_map(|t| format!("{t:?}")),
        Just("null".to_string()),
        Just("[1, 2]".to_string()),
        Just("1.5e3".to_string()),
    ];
    proptest::collection::vec((key, value), 0..6).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
        format!("{{{}}}", body.join(", "))
    })
}

/// Bytes that look like frames: a prefix of any size, then JSON-ish text.
fn framed() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![any::<i32>(), 0i32..300, Just(i32::MAX), Just(-1)];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        json_object().prop_map(String::into_bytes),
    ];
    // Half the frames carry their true length, so whole headers decode.
    (prefix, body, any::<bool>()).prop_map(|(p, b, honest)| {
        let p = if honest { b.len() as i32 } else { p };
        let mut out = p.to_le_bytes().to_vec();
        out.extend(b);
        out
    })
}

proptest! {
    #[test]
    fn prefixes_decode_without_panic_or_allocation(buf in proptest::collection::vec(any::<u8>(), 0..16)) {
        for f in PrefixFormat::ALL {
            let (_, bytes) = allocated_by(|| f.decode(&buf));
            prop_assert_eq!(bytes, 0);
        }
    }

    #[test]
    fn headers_decode_within_budget_whatever_the_prefix_claims(buf in framed()) {
        for f in [PrefixFormat::I32Le, PrefixFormat::I32Be, PrefixFormat::I64Le] {
            let (result, bytes) = allocated_by(|| decode_header(&buf, f, MAX_HEADER));
            prop_assert!(bytes <= budget(buf.len()), "{} bytes for {} of input", bytes, buf.len());
            if let Ok(Decoded::Done(map, used)) = &result {
                prop_assert!(*used <= buf.len());
                DECODED.with(|d| d.set(d.get() + 1));
                let _ = size_field(map, "size", Some(buf.len() as u64));
            }
            if let Ok(Decoded::Incomplete(need)) = result {
                prop_assert!(need > buf.len() && need <= 8 + MAX_HEADER);
            }
        }
    }

    #[test]
    fn stat_lines_from_any_process_name_parse_or_not_but_never_panic(text in "\\PC{0,200}") {
        let _ = parse_stat(&text);
        let _ = parse_stat(&format!("1 ({text}) S 1 2 3 4 5 6 7 8 9 10 11 12"));
    }

    #[test]
    fn thread_counters_parse_or_not_but_never_panic(text in "\\PC{0,200}", n in any::<u64>()) {
        let _ = parse_schedstat(&text);
        prop_assert_eq!(parse_schedstat(&format!("{n} {n} {text}")).map(|s| s.running_ns), Some(n));
        let _ = parse_task_status(&text);
        let _ = parse_task_status(&format!("State:\t{text}\nvoluntary_ctxt_switches:\t{text}\n"));
        let parsed = parse_task_status(&format!("Name:\t{text}\nState:\tR {text}\nvoluntary_ctxt_switches:\t{n}\n"));
        prop_assert_eq!(parsed.map(|s| (s.runnable, s.sleeps)), Some((true, n)));
    }

    #[test]
    fn received_bytes_are_shown_within_budget(a in proptest::collection::vec(any::<u8>(), 0..400),
                                             b in proptest::collection::vec(any::<u8>(), 0..400),
                                             at in 0usize..500) {
        let (_, bytes) = allocated_by(|| {
            let _ = show::compare(&a, &b);
            let _ = show::quoted(&a, 48);
            let _ = show::hex_around(&a, at.min(a.len()));
        });
        prop_assert!(bytes <= budget(a.len() + b.len()));
    }

    #[test]
    fn process_output_is_kept_bounded_and_searchable(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5000), 0..40),
                                                     needle in proptest::collection::vec(any::<u8>(), 0..8)) {
        let c = Capture::default();
        for chunk in &chunks {
            c.push(chunk);
        }
        c.close();
        let total: usize = chunks.iter().map(Vec::len).sum();
        prop_assert_eq!(c.total(), total as u64);
        let tail = c.tail(15);
        // 15 lines of at most 400 characters (4 bytes each) and a note.
        prop_assert!(tail.len() <= 15 * (4 * 400 + 64), "a tail of {} bytes", tail.len());
        let _ = c.wait_for(&needle, 0, std::time::Instant::now());
    }

    #[test]
    fn kernel_socket_dumps_parse_without_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = sockdiag::parse(&buf);
    }
}

#[test]
fn generated_frames_reach_whole_headers() {
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut whole = 0;
    for _ in 0..200 {
        let buf = framed().new_tree(&mut runner).unwrap().current();
        if let Ok(Decoded::Done(..)) = decode_header(&buf, PrefixFormat::I32Le, MAX_HEADER) {
            whole += 1;
        }
    }
    assert!(
        whole >= 10,
        "only {whole} of 200 generated frames were whole headers"
    );
}

#[test]
fn a_giant_claimed_header_costs_nothing() {
    let buf = i32::MAX.to_le_bytes();
    let (result, bytes) = allocated_by(|| decode_header(&buf, PrefixFormat::I32Le, MAX_HEADER));
    assert!(result.is_err());
    assert_eq!(bytes, 0, "refusing a lie must not allocate");
}

#[test]
fn the_allocation_counter_counts() {
    let (_, bytes) = allocated_by(|| vec![0u8; 1000]);
    assert!(bytes >= 1000);
}
