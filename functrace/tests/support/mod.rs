//! Reading trace lines back in tests: parse, mask elapsed times, split by task, check nesting.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// One parsed line: `t[NN]:` (or `t[NN] TRACEID:`) + 4 spaces per depth + `->name[(args)]`, or
/// `<-name ELAPSED[ note][ (mark)]` (`mark` holds what follows the elapsed time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub task: String,
    pub trace: Option<String>,
    pub depth: usize,
    pub enter: bool,
    pub name: String,
    pub mark: Option<String>,
}

fn fail<T>(line: &str) -> T {
    panic!("malformed trace line: {line:?}")
}

/// Parses a line, panicking with the line on anything malformed (a torn line fails here).
pub fn parse(line: &str) -> Event {
    let rest = line.strip_prefix("t[").unwrap_or_else(|| fail(line));
    let (task, rest) = rest.split_once(']').unwrap_or_else(|| fail(line));
    // `05`, or a branch of task 05: `05.2`.
    let (id, branch) = task.split_once('.').unwrap_or((task, "1"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if id.len() < 2 || !digits(id) || !digits(branch) {
        fail::<()>(line);
    }
    // Inside a trace: ` TRACEID` (16 or 32 lowercase hex) before the colon.
    let (trace, rest) = match rest.strip_prefix(' ') {
        Some(traced) => {
            let (id, rest) = traced.split_once(':').unwrap_or_else(|| fail(line));
            let hex = id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex || !(id.len() == 16 || id.len() == 32) {
                fail::<()>(line);
            }
            (Some(id.to_owned()), rest)
        }
        None => (None, rest.strip_prefix(':').unwrap_or_else(|| fail(line))),
    };
    let body = rest.trim_start_matches(' ');
    let spaces = rest.len() - body.len();
    if spaces == 0 || spaces % 4 != 0 {
        fail::<()>(line);
    }
    let (enter, body) = match (body.strip_prefix("->"), body.strip_prefix("<-")) {
        (Some(name), _) => (true, name),
        (_, Some(exit)) => (false, exit),
        _ => fail(line),
    };
    let (name, mark) = if enter {
        (strip_args(body), None)
    } else {
        // Names may hold spaces (`<m::T as Trait>::f`): the elapsed time is the first word
        // after the name that reads as a duration.
        let words: Vec<&str> = body.split(' ').collect();
        let at = (1..words.len())
            .find(|&i| is_duration(words[i]))
            .unwrap_or_else(|| fail(line));
        let rest = words[at + 1..].join(" ");
        (words[..at].join(" "), (!rest.is_empty()).then_some(rest))
    };
    if name.is_empty() {
        fail::<()>(line);
    }
    Event {
        task: task.to_owned(),
        trace,
        depth: spaces / 4,
        enter,
        name,
        mark,
    }
}

/// `850ns`, `2.1µs`, `14.0ms`, `3.2s`.
fn is_duration(word: &str) -> bool {
    let digits = word.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
    let unit = &word[digits.len()..];
    digits.parse::<f64>().is_ok() && ["ns", "µs", "ms", "s"].contains(&unit)
}

/// The fn name of an enter line without its `(arguments)`.
fn strip_args(body: &str) -> String {
    if !body.ends_with(')') {
        return body.to_owned();
    }
    let mut depth = 0;
    for (i, c) in body.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return body[..i].to_owned();
                }
            }
            _ => {}
        }
    }
    body.to_owned()
}

/// The line with its elapsed time replaced by `*`.
pub fn mask(line: &str) -> String {
    let event = parse(line);
    if event.enter {
        return line.to_owned();
    }
    let arrow = line.find("<-").expect("exit line");
    let mut masked = format!("{}<-{} *", &line[..arrow], event.name);
    if let Some(mark) = event.mark {
        masked.push(' ');
        masked.push_str(&mark);
    }
    masked
}

/// Lines grouped by task id, tasks in order of first appearance.
pub fn by_task(lines: &[String]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        let task = parse(line).task;
        match groups.iter_mut().find(|(id, _)| *id == task) {
            Some((_, group)) => group.push(line.clone()),
            None => groups.push((task, vec![line.clone()])),
        }
    }
    groups
}

/// Asserts that one task's lines form a tree: every exit closes the innermost open call at
/// its depth, depths grow by one per level, and nothing stays open.
pub fn assert_well_nested(lines: &[String]) {
    let mut open: Vec<Event> = Vec::new();
    let base = lines.first().map_or(1, |l| parse(l).depth);
    for line in lines {
        let event = parse(line);
        if event.enter {
            assert_eq!(
                event.depth,
                base + open.len(),
                "wrong depth: {line}\nin {lines:#?}"
            );
            open.push(event);
        } else {
            let top = open
                .pop()
                .unwrap_or_else(|| panic!("exit without enter: {line}"));
            assert_eq!(
                (top.depth, &top.name),
                (event.depth, &event.name),
                "{line}\nin {lines:#?}"
            );
        }
    }
    assert!(open.is_empty(), "calls left open: {open:?}");
}

/// Every task's lines, masked, each branch's after the task's own (branches of one task run
/// concurrently too), with task ids renumbered from 01 after sorting the tasks by their text
/// (branch numbers kept): a form that does not depend on which of two racing tasks got which
/// id.
pub fn canonical(lines: &[String]) -> String {
    let mut tasks: Vec<(u32, Vec<(String, String)>)> = Vec::new();
    for line in lines {
        let id = parse(line).task;
        let branch = id
            .split_once('.')
            .map(|(_, b)| format!(".{b}"))
            .unwrap_or_default();
        let body = mask(line).split_once("]:").expect("prefix").1.to_owned();
        let task = task_of(&id);
        match tasks.iter_mut().find(|(t, _)| *t == task) {
            Some((_, group)) => group.push((branch, body)),
            None => tasks.push((task, vec![(branch, body)])),
        }
    }
    let mut groups: Vec<Vec<(String, String)>> = tasks.into_iter().map(|(_, g)| g).collect();
    for group in &mut groups {
        group.sort_by_key(|(branch, _)| branch.trim_start_matches('.').parse::<u32>().unwrap_or(0));
    }
    groups.sort();
    let mut out = String::new();
    for (n, group) in groups.iter().enumerate() {
        for (branch, line) in group {
            out.push_str(&format!("t[{:02}{branch}]:{line}\n", n + 1));
        }
    }
    out
}

/// The lines masked, with task ids renumbered from 01 in order of first appearance (branch
/// numbers kept): the form goldens are written in, whatever ids earlier tests took.
pub fn renumbered(lines: &[String]) -> String {
    let mut tasks: Vec<u32> = Vec::new();
    let mut out = String::new();
    for line in lines {
        let event = parse(line);
        let task = task_of(&event.task);
        let n = match tasks.iter().position(|&t| t == task) {
            Some(n) => n + 1,
            None => {
                tasks.push(task);
                tasks.len()
            }
        };
        let branch = event.task.split_once('.').map(|(_, b)| format!(".{b}"));
        let masked = mask(line);
        let rest = masked.split_once(']').expect("prefix").1;
        out.push_str(&format!("t[{n:02}{}]{rest}\n", branch.unwrap_or_default()));
    }
    out
}

/// Distinct task ids of the lines (branches counted with their task), numerically sorted.
pub fn task_ids(lines: &[String]) -> Vec<u32> {
    let ids: BTreeSet<u32> = lines.iter().map(|l| task_of(&parse(l).task)).collect();
    ids.into_iter().collect()
}

/// The task of an id: 5 for `05` and `05.2`.
pub fn task_of(id: &str) -> u32 {
    let task = id.split_once('.').map_or(id, |(task, _)| task);
    task.parse().expect("numeric id")
}

/// Asserts that every id's lines (each branch apart) form a tree.
pub fn assert_every_id_nests(lines: &[String]) {
    for (_, group) in by_task(lines) {
        assert_well_nested(&group);
    }
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` with trace lines going to memory, one capture at a time in this test binary.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let memory = functrace::MemorySink::new();
    functrace::Builder::new()
        .output(functrace::Output::Memory(memory.clone()))
        .install()
        .expect("memory output");
    let result = f();
    functrace::Builder::new()
        .output(functrace::Output::Null)
        .install()
        .expect("null output");
    (result, memory.lines())
}
