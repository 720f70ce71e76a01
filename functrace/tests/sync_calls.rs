//! Sync traced calls: nesting, every way out of a function, threads, torn lines.
#![cfg(feature = "trace")]

mod support;

use functrace::trace;
use support::{assert_well_nested, by_task, capture, mask, parse};

#[trace]
fn leaf() {}

#[trace]
fn middle() {
    leaf();
    leaf();
}

#[trace]
fn top() {
    middle();
}

#[test]
fn nested_calls_indent_by_depth() {
    let ((), lines) = capture(top);
    let masked: Vec<String> = lines.iter().map(|l| mask(l)).collect();
    let prefix = &lines[0][..lines[0].find(':').unwrap() + 1];
    let expected = [
        "    ->sync_calls::top",
        "        ->sync_calls::middle",
        "            ->sync_calls::leaf",
        "            <-sync_calls::leaf *",
        "            ->sync_calls::leaf",
        "            <-sync_calls::leaf *",
        "        <-sync_calls::middle *",
        "    <-sync_calls::top *",
    ]
    .map(|l| format!("{prefix}{l}"));
    assert_eq!(masked, expected);
}

#[trace]
fn early_return(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    leaf();
    n
}

#[trace]
fn question_mark(input: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = input.parse()?;
    leaf();
    Ok(n)
}

#[trace]
fn returns_a_reference(v: &mut Vec<u8>) -> &mut u8 {
    v.push(1);
    v.last_mut().unwrap()
}

#[test]
fn every_way_out_closes_the_call() {
    let ((), lines) = capture(|| {
        assert_eq!(early_return(0), 0);
        assert_eq!(early_return(3), 3);
        assert!(question_mark("x").is_err());
        assert_eq!(question_mark("7"), Ok(7));
        let mut v = Vec::new();
        *returns_a_reference(&mut v) += 1;
        assert_eq!(v, [2]);
    });
    assert_well_nested(&lines);
    let events: Vec<(usize, bool, String)> = lines
        .iter()
        .map(|l| parse(l))
        .map(|e| (e.depth, e.enter, e.name.replace("sync_calls::", "")))
        .collect();
    let expected = [
        (1, true, "early_return"),
        (1, false, "early_return"),
        (1, true, "early_return"),
        (2, true, "leaf"),
        (2, false, "leaf"),
        (1, false, "early_return"),
        (1, true, "question_mark"),
        (1, false, "question_mark"),
        (1, true, "question_mark"),
        (2, true, "leaf"),
        (2, false, "leaf"),
        (1, false, "question_mark"),
        (1, true, "returns_a_reference"),
        (1, false, "returns_a_reference"),
    ]
    .map(|(d, e, n)| (d, e, n.to_owned()));
    assert_eq!(events, expected);
}

#[trace]
fn panics() {
    leaf();
    panic!("boom");
}

#[trace]
fn catches() {
    let caught = std::panic::catch_unwind(panics);
    assert!(caught.is_err());
    leaf();
}

#[test]
fn a_panic_is_marked_and_depth_recovers() {
    let ((), lines) = capture(catches);
    let masked: Vec<String> = lines
        .iter()
        .map(|l| mask(l).split_once(':').unwrap().1.to_owned())
        .collect();
    assert_eq!(
        masked,
        [
            "    ->sync_calls::catches",
            "        ->sync_calls::panics",
            "            ->sync_calls::leaf",
            "            <-sync_calls::leaf *",
            "        <-sync_calls::panics * (panicked)",
            "        ->sync_calls::leaf",
            "        <-sync_calls::leaf *",
            "    <-sync_calls::catches *",
        ]
    );
}

#[trace]
fn recurse(n: u32) {
    if n > 0 {
        recurse(n - 1);
    }
}

#[test]
fn threads_get_their_own_ids_and_lines_never_tear() {
    const THREADS: usize = 8;
    let ((), lines) = capture(|| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..50 {
                        recurse(20);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
    // `parse` rejects any torn or interleaved line.
    let tasks = by_task(&lines);
    assert_eq!(tasks.len(), THREADS);
    for (_, task) in &tasks {
        assert_eq!(task.len(), 50 * 21 * 2);
        assert_well_nested(task);
        assert_eq!(parse(task.last().unwrap()).depth, 1);
    }
}

#[test]
fn ids_are_sequential_in_order_of_first_appearance() {
    let ((), lines) = capture(|| {
        for _ in 0..3 {
            std::thread::spawn(leaf).join().unwrap();
        }
    });
    let ids = support::task_ids(&lines);
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2] - ids[0], 2, "{ids:?}");
}
