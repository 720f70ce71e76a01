//! One trace arranged as a tree, by Zipkin's rule for shared spans; orphans and cycles marked.

use super::*;

/// One trace: its spans, sorted by start, and the order they are drawn in.
#[derive(Debug)]
pub struct Trace {
    /// The trace id.
    pub id: TraceId,
    /// The spans, by start time (file order on ties).
    pub spans: Vec<Span>,
    /// Every span once, depth first, children by start time: roots, then orphans, then the
    /// spans of parent chains that loop.
    pub rows: Vec<Row>,
    /// The earliest start, µs since the Unix epoch.
    pub start: u64,
    /// The latest end, µs since the Unix epoch.
    pub end: u64,
}

/// One span of a drawn trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// Index into [`Trace::spans`].
    pub span: usize,
    /// 0 for a root, orphan or loop-breaker.
    pub depth: usize,
    /// Why the span is where it is.
    pub place: Place,
}

/// How a row got its place in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A span without a parent.
    Root,
    /// Under its parent.
    Child,
    /// Its parent is not in the files: an extra root.
    Orphan,
    /// Its parent chain loops (bad data): the loop is broken here, an extra root.
    Cycle,
}

/// A span's parent in a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// No parent id.
    Root,
    /// Index of the parent span.
    Parent(usize),
    /// A parent id that no span of the trace has.
    Missing,
}

impl Trace {
    /// Arranges the spans of one trace (all with trace id `id`).
    pub fn new(id: TraceId, mut spans: Vec<Span>) -> Trace {
        // Sorted by start, every list of children built in index order is sorted too.
        spans.sort_by_key(|span| span.timestamp);
        let rows = arrange(&links(&spans));
        let start = spans.iter().map(|s| s.timestamp).min().unwrap_or(0);
        let end = spans.iter().map(end_of).max().unwrap_or(start);
        Trace {
            id,
            spans,
            rows,
            start,
            end,
        }
    }

    /// From the earliest start to the latest end, in µs.
    pub fn duration(&self) -> u64 {
        self.end - self.start
    }

    /// The span drawn first: the earliest root (or orphan, when no span is a root).
    pub fn root(&self) -> Option<&Span> {
        self.rows.first().map(|row| &self.spans[row.span])
    }

    /// Spans with an `error` tag.
    pub fn errors(&self) -> usize {
        self.spans
            .iter()
            .filter(|s| s.tags.contains_key("error"))
            .count()
    }

    /// Distinct services with spans in the trace.
    pub fn services(&self) -> usize {
        let names: HashSet<_> = self.spans.iter().map(service_of).collect();
        names.len()
    }
}

impl Filter {
    /// Whether a list keeps `trace`.
    pub fn keeps(&self, trace: &Trace) -> bool {
        let service_ok = self.service.as_ref().is_none_or(|wanted| {
            trace
                .spans
                .iter()
                .any(|span| service_of(span).eq_ignore_ascii_case(wanted))
        });
        service_ok && self.min_duration.is_none_or(|min| trace.duration() >= min)
    }
}

/// Groups spans by trace id, the newest trace (latest first timestamp) first.
pub fn traces(spans: Vec<Span>) -> Vec<Trace> {
    let mut by_id: HashMap<TraceId, Vec<Span>> = HashMap::new();
    for span in spans {
        by_id.entry(span.trace_id).or_default().push(span);
    }
    let mut traces: Vec<Trace> = by_id
        .into_iter()
        .map(|(id, spans)| Trace::new(id, spans))
        .collect();
    traces.sort_by_cached_key(|t| (std::cmp::Reverse(t.start), t.id.to_string()));
    traces
}

/// The trace with hex id `id`; a 64-bit id also finds the 128-bit trace with those low bits.
pub fn find<'a>(traces: &'a [Trace], id: &str) -> Option<&'a Trace> {
    let id = id.trim().to_ascii_lowercase();
    traces.iter().find(|t| {
        t.id.to_string() == id || (id.len() == 16 && format!("{:016x}", t.id.low()) == id)
    })
}

pub(super) fn is_shared_server(span: &Span) -> bool {
    span.kind == Some(Kind::Server) && span.shared == Some(true)
}

/// Each span's parent. A shared SERVER span's parent is the CLIENT span with its id; other
/// spans' parent is the span with their `parent_id`, the shared SERVER span when there is one.
pub(super) fn links(spans: &[Span]) -> Vec<Link> {
    let mut plain: HashMap<SpanId, usize> = HashMap::new();
    let mut shared: HashMap<SpanId, usize> = HashMap::new();
    for (index, span) in spans.iter().enumerate() {
        let ids = if is_shared_server(span) {
            &mut shared
        } else {
            &mut plain
        };
        ids.entry(span.id).or_insert(index);
    }
    spans
        .iter()
        .map(|span| {
            if is_shared_server(span) {
                if let Some(&client) = plain.get(&span.id) {
                    return Link::Parent(client);
                }
            }
            match span.parent_id {
                None => Link::Root,
                Some(parent) => match shared.get(&parent).or_else(|| plain.get(&parent)) {
                    Some(&index) => Link::Parent(index),
                    None => Link::Missing,
                },
            }
        })
        .collect()
}

/// The drawing order: each root, then each orphan, with its subtree; then what is left,
/// which hangs off parent chains that loop, from a span on each loop.
pub(super) fn arrange(links: &[Link]) -> Vec<Row> {
    let mut children = vec![Vec::new(); links.len()];
    let (mut roots, mut orphans) = (Vec::new(), Vec::new());
    for (index, link) in links.iter().enumerate() {
        match *link {
            Link::Root => roots.push(index),
            Link::Missing => orphans.push(index),
            Link::Parent(parent) => children[parent].push(index),
        }
    }
    let mut rows = Vec::with_capacity(links.len());
    let mut seen = vec![false; links.len()];
    for (start, place) in roots
        .into_iter()
        .map(|i| (i, Place::Root))
        .chain(orphans.into_iter().map(|i| (i, Place::Orphan)))
    {
        walk(start, place, &children, &mut seen, &mut rows);
    }
    for index in 0..links.len() {
        if seen[index] {
            continue;
        }
        // Follow the parents up to the first span met twice: that one is on the loop.
        let mut path = HashSet::new();
        let mut on_loop = index;
        while path.insert(on_loop) {
            match links[on_loop] {
                Link::Parent(parent) => on_loop = parent,
                Link::Root | Link::Missing => break,
            }
        }
        walk(on_loop, Place::Cycle, &children, &mut seen, &mut rows);
    }
    rows
}

/// Adds `start` and its not yet seen descendants to `rows`, depth first, without recursion.
pub(super) fn walk(
    start: usize,
    place: Place,
    children: &[Vec<usize>],
    seen: &mut [bool],
    rows: &mut Vec<Row>,
) {
    let mut stack = vec![(start, 0)];
    while let Some((index, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        let place = if depth == 0 { place } else { Place::Child };
        rows.push(Row {
            span: index,
            depth,
            place,
        });
        stack.extend(
            children[index]
                .iter()
                .rev()
                .map(|&child| (child, depth + 1)),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Text
