//! Random trees of sync and async calls, with `join!`, `select!` and `spawn`, run on a
//! 4-worker runtime: every id's lines nest, and the tree rebuilt from them id by id is the
//! tree that ran. Seeded and reproducible: `FUNCTRACE_TEST_SEED=N` replays a run.
#![cfg(feature = "trace")]

mod support;

use std::collections::HashMap;
use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use functrace::trace;
use support::{assert_every_id_nests, capture, parse, task_of};
use tokio::task::yield_now;

const CASES: u64 = 300;

/// A traced call and what it does, in order.
#[derive(Debug)]
struct Node {
    id: u32,
    steps: Vec<Step>,
}

#[derive(Debug)]
enum Step {
    Sync(Arc<Node>),
    Await(Arc<Node>),
    Join(Vec<Arc<Node>>),
    /// `select!` of a call that never ends (cancelled) and one that does.
    Select {
        loser: Arc<Node>,
        winner: Arc<Node>,
    },
    Spawn(Arc<Node>),
    Yield,
}

/// What ran: each call that started, under which call.
#[derive(Debug, Clone, Copy)]
struct Ran {
    id: u32,
    parent: Option<u32>,
    /// Inside the losing side of a `select!`: may end cancelled.
    losing: bool,
    spawned: bool,
}

static RAN: Mutex<Vec<Ran>> = Mutex::new(Vec::new());

fn record(ran: Ran) {
    RAN.lock().unwrap_or_else(PoisonError::into_inner).push(ran);
}

#[trace(args(id))]
fn sync_call(id: u32, node: &Node, parent: u32, losing: bool) {
    record(Ran {
        id,
        parent: Some(parent),
        losing,
        spawned: false,
    });
    for step in &node.steps {
        if let Step::Sync(child) = step {
            sync_call(child.id, child, id, losing);
        }
    }
}

#[derive(Clone, Copy)]
struct Place {
    parent: Option<u32>,
    losing: bool,
    spawned: bool,
}

#[trace(args(id))]
async fn async_call(id: u32, node: Arc<Node>, place: Place, stuck: bool) {
    record(Ran {
        id,
        parent: place.parent,
        losing: place.losing,
        spawned: place.spawned,
    });
    let under = |losing| Place {
        parent: Some(id),
        losing,
        spawned: false,
    };
    let run = |child: &Arc<Node>, losing, stuck| boxed(child, under(losing), stuck);
    for step in &node.steps {
        match step {
            Step::Sync(child) => sync_call(child.id, child, id, place.losing),
            Step::Await(child) => run(child, place.losing, false).await,
            Step::Join(children) => {
                futures::future::join_all(children.iter().map(|c| run(c, place.losing, false)))
                    .await;
            }
            Step::Select { loser, winner } => {
                tokio::select! {
                    biased;
                    () = run(loser, true, true) => unreachable!("never ends"),
                    () = run(winner, place.losing, false) => {}
                }
            }
            Step::Spawn(child) => {
                let place = Place {
                    spawned: true,
                    ..under(place.losing)
                };
                tokio::spawn(boxed(child, place, false)).await.unwrap();
            }
            Step::Yield => yield_now().await,
        }
    }
    if stuck {
        pending::<()>().await;
    }
}

/// A call of `async_call` as a future of a type that says it is `Send`: the recursion would
/// otherwise ask the compiler to prove it of itself.
fn boxed(node: &Arc<Node>, place: Place, stuck: bool) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async_call(node.id, node.clone(), place, stuck))
}

/// splitmix64.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Plan<'a> {
    random: &'a mut Random,
    next_id: u32,
}

impl Plan<'_> {
    fn node(&mut self, depth: u32, sync: bool, losing: bool) -> Arc<Node> {
        self.next_id += 1;
        let id = self.next_id;
        let mut steps = Vec::new();
        if depth > 0 {
            for _ in 0..self.random.below(4) {
                let step = if sync {
                    Step::Sync(self.node(depth - 1, true, losing))
                } else {
                    match self.random.below(7) {
                        0 => Step::Sync(self.node(depth - 1, true, losing)),
                        1 | 2 => Step::Await(self.node(depth - 1, false, losing)),
                        3 => {
                            let width = 2 + self.random.below(2);
                            Step::Join(
                                (0..width)
                                    .map(|_| self.node(depth - 1, false, losing))
                                    .collect(),
                            )
                        }
                        4 => Step::Select {
                            loser: self.node(depth - 1, false, true),
                            winner: self.node(depth - 1, false, losing),
                        },
                        // A task spawned from a losing branch would outlive the case.
                        5 if !losing => Step::Spawn(self.node(depth - 1, false, losing)),
                        _ => Step::Yield,
                    }
                };
                steps.push(step);
            }
        }
        Arc::new(Node { id, steps })
    }
}

/// A call's lines in the output: its id, the id its lines print under, its depth, where its
/// enter and exit lines are, and the call whose lines it nests in under the same id.
#[derive(Debug)]
struct Seen {
    label: String,
    depth: usize,
    enter: usize,
    exit: usize,
    nested_in: Option<u32>,
    cancelled: bool,
}

/// The calls rebuilt from the lines, id by id.
fn rebuild(lines: &[String]) -> HashMap<u32, Seen> {
    let mut stacks: HashMap<String, Vec<u32>> = HashMap::new();
    let mut seen: HashMap<u32, Seen> = HashMap::new();
    for (at, line) in lines.iter().enumerate() {
        let event = parse(line);
        let stack = stacks.entry(event.task.clone()).or_default();
        if event.enter {
            let id = line
                .split_once("(id = ")
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("no id in {line}"));
            let call = Seen {
                label: event.task,
                depth: event.depth,
                enter: at,
                exit: usize::MAX,
                nested_in: stack.last().copied(),
                cancelled: false,
            };
            assert!(seen.insert(id, call).is_none(), "{id} entered twice");
            stack.push(id);
        } else {
            let id = stack.pop().expect("nested");
            let call = seen.get_mut(&id).expect("entered");
            call.exit = at;
            call.cancelled = event.mark.as_deref() == Some("(cancelled)");
        }
    }
    seen
}

/// How much of each shape the cases exercised.
#[derive(Debug, Default)]
struct Exercised {
    calls: usize,
    branched: usize,
    cancelled: usize,
    spawned: usize,
}

fn check(ran: &[Ran], lines: &[String], case: &str, exercised: &mut Exercised) {
    assert_every_id_nests(lines);
    let seen = rebuild(lines);
    assert_eq!(seen.len(), ran.len(), "{case}: every call that ran, once");
    for call in ran {
        let this = &seen[&call.id];
        exercised.calls += 1;
        exercised.branched += usize::from(this.label.contains('.'));
        exercised.cancelled += usize::from(this.cancelled);
        exercised.spawned += usize::from(call.spawned);
        assert!(this.exit != usize::MAX, "{case}: {} never left", call.id);
        assert!(
            call.losing || !this.cancelled,
            "{case}: {} cancelled",
            call.id
        );
        match (this.nested_in, call.parent) {
            (Some(nested_in), parent) => {
                assert_eq!(Some(nested_in), parent, "{case}: parent of {}", call.id)
            }
            // The first call of a branch: its caller is in the same task, one level up,
            // and open all along.
            (None, Some(parent)) if this.label.contains('.') => {
                let caller = &seen[&parent];
                assert_eq!(task_of(&caller.label), task_of(&this.label), "{case}");
                assert_eq!(caller.depth + 1, this.depth, "{case}: {}", call.id);
                assert!(
                    caller.enter < this.enter && this.exit < caller.exit,
                    "{case}"
                );
            }
            // The first call of a task: a root, or spawned.
            (None, parent) => {
                assert_eq!(this.depth, 1, "{case}: {}", call.id);
                assert!(parent.is_none() || call.spawned, "{case}: {}", call.id);
            }
        }
    }
}

#[test]
fn random_trees_print_as_they_ran() {
    let seed = std::env::var("FUNCTRACE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let mut random = Random(seed);
    let mut exercised = Exercised::default();
    for case in 0..CASES {
        let root = Plan {
            random: &mut random,
            next_id: 0,
        }
        .node(4, false, false);
        let spawned = case % 2 == 1;
        RAN.lock().unwrap_or_else(PoisonError::into_inner).clear();
        let ((), lines) = capture(|| {
            let place = Place {
                parent: None,
                losing: false,
                spawned,
            };
            let run = async_call(root.id, root.clone(), place, false);
            match spawned {
                true => runtime.block_on(runtime.spawn(run)).unwrap(),
                false => runtime.block_on(run),
            }
        });
        let ran = RAN.lock().unwrap_or_else(PoisonError::into_inner).clone();
        check(
            &ran,
            &lines,
            &format!("seed {seed}, case {case}"),
            &mut exercised,
        );
    }
    println!("{exercised:?}");
    let Exercised {
        calls,
        branched,
        cancelled,
        spawned,
    } = exercised;
    assert!(
        branched * 10 > calls && cancelled > 0 && spawned > 0,
        "{exercised:?}"
    );
}
