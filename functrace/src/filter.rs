//! Which traced functions print: `FUNCTRACE=myapp=on,myapp::db=off` (or [`Builder::filter`]),
//! decided once per call site and cached until the filter changes.
//!
//! [`Builder::filter`]: crate::Builder::filter

use std::fmt;

/// Comma-separated directives: `path=on|off` (the longest module-path prefix that matches a
/// call site decides), and a bare `on`/`off` for the rest (`1`/`0`, `true`/`false` too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Filter {
    default: bool,
    /// Longest path first.
    paths: Vec<(String, bool)>,
}

/// A directive of a filter that is not `path=on|off`, `on` or `off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    directive: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad functrace filter directive `{}` (expected `path=on`, `path=off`, `on` or `off`)",
            self.directive
        )
    }
}

impl std::error::Error for FilterError {}

impl Default for Filter {
    fn default() -> Filter {
        Filter::everything(true)
    }
}

impl Filter {
    /// Everything on, or everything off.
    pub fn everything(on: bool) -> Filter {
        Filter {
            default: on,
            paths: Vec::new(),
        }
    }

    /// Sets whether calls that no path matches print.
    pub fn set_default(&mut self, on: bool) {
        self.default = on;
    }

    /// Parses `directives`, keeping the good ones; returns the bad ones beside.
    pub fn parse(directives: &str) -> (Filter, Vec<FilterError>) {
        let mut filter = Filter::default();
        let mut errors = Vec::new();
        for directive in directives.split(',').map(str::trim) {
            if directive.is_empty() {
                continue;
            }
            let parsed = match directive.split_once('=') {
                None => switch(directive).map(|on| filter.default = on),
                Some((path, value)) => match (valid_path(path.trim()), switch(value.trim())) {
                    (true, Some(on)) => {
                        let path = path.trim().to_owned();
                        filter.paths.retain(|(known, _)| *known != path);
                        filter.paths.push((path, on));
                        Some(())
                    }
                    _ => None,
                },
            };
            if parsed.is_none() {
                errors.push(FilterError {
                    directive: directive.to_owned(),
                });
            }
        }
        filter
            .paths
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        (filter, errors)
    }

    /// Parses `directives`, failing on the first bad one.
    pub fn parse_strict(directives: &str) -> Result<Filter, FilterError> {
        let (filter, mut errors) = Filter::parse(directives);
        match errors.is_empty() {
            true => Ok(filter),
            false => Err(errors.remove(0)),
        }
    }

    /// Whether nothing can print: then tracing is muted as a whole.
    pub fn is_off(&self) -> bool {
        !self.default && self.paths.iter().all(|(_, on)| !on)
    }

    /// Whether calls in `module` print.
    pub fn enables(&self, module: &str) -> bool {
        self.paths
            .iter()
            .find(|(path, _)| within(module, path))
            .map_or(self.default, |(_, on)| *on)
    }
}

fn switch(value: &str) -> Option<bool> {
    match value {
        "on" | "1" | "true" => Some(true),
        "off" | "0" | "false" => Some(false),
        _ => None,
    }
}

fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path
            .split("::")
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// `a::b` is within `a` and `a::b`, not within `a::bc` or `ab`.
fn within(module: &str, path: &str) -> bool {
    module
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

#[cfg(runtime)]
pub use callsite::Callsite;

#[cfg(runtime)]
mod callsite {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One traced function: its name and module, and whether the filter lets it print, decided
    /// at its first call under each filter. Made by `#[trace]`, one `static` per function.
    #[doc(hidden)]
    pub struct Callsite {
        name: &'static str,
        module: &'static str,
        /// The output generation it was decided for, shifted left once, and the decision in bit
        /// 0. Generations start at 1, so 0 means "not decided".
        interest: AtomicUsize,
    }

    impl Callsite {
        /// The call site of the fn `name`, in `module` (`module_path!()`).
        pub const fn new(name: &'static str, module: &'static str) -> Callsite {
            Callsite {
                name,
                module,
                interest: AtomicUsize::new(0),
            }
        }

        /// The name its lines print.
        pub(crate) fn name(&self) -> &'static str {
            self.name
        }

        /// The path directives are matched against: the module, and the fn within it when its
        /// name is a path in the module (`app::db::query`, `app::Cart::total`), so that a
        /// directive can name one fn or one type's methods.
        fn path(&self) -> &'static str {
            match self.name.strip_prefix(self.module) {
                Some(rest) if rest.starts_with("::") => self.name,
                _ => self.module,
            }
        }

        /// Whether it prints under the filter of output `generation`.
        #[inline]
        pub(crate) fn enabled(&self, generation: usize) -> bool {
            let interest = self.interest.load(Ordering::Relaxed);
            if interest >> 1 == generation {
                interest & 1 == 1
            } else {
                self.decide(generation)
            }
        }

        #[cold]
        fn decide(&self, generation: usize) -> bool {
            let on = crate::output::filter_enables(self.path());
            self.interest
                .store(generation << 1 | usize::from(on), Ordering::Relaxed);
            on
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_path_wins() {
        let filter = Filter::parse_strict("myapp=on, myapp::db=off ,off").unwrap();
        assert!(filter.enables("myapp"));
        assert!(filter.enables("myapp::web"));
        assert!(!filter.enables("myapp::db"));
        assert!(!filter.enables("myapp::db::pool"));
        assert!(!filter.enables("myapp2"), "prefixes stop at `::`");
        assert!(!filter.enables("other"));
        assert!(!filter.is_off());
    }

    #[test]
    fn bare_switches_set_the_default() {
        for (text, on) in [("off", false), ("0", false), ("false", false), ("on", true)] {
            let filter = Filter::parse_strict(text).unwrap();
            assert_eq!(filter.enables("any::thing"), on, "{text}");
            assert_eq!(filter.is_off(), !on, "{text}");
        }
        assert!(Filter::parse_strict("").unwrap().enables("x"));
        assert!(Filter::parse_strict("off,a=off").unwrap().is_off());
    }

    #[test]
    fn a_later_directive_for_the_same_path_replaces_the_earlier() {
        let filter = Filter::parse_strict("a=off,a=on").unwrap();
        assert!(filter.enables("a"));
    }

    #[test]
    fn bad_directives_are_named_and_the_others_kept() {
        let (filter, errors) = Filter::parse("a=maybe,b=off,=on,c::=on,on=off=on,d e=on");
        let named: Vec<String> = errors.iter().map(|e| e.directive.clone()).collect();
        assert_eq!(named, ["a=maybe", "=on", "c::=on", "on=off=on", "d e=on"]);
        assert!(!filter.enables("b"));
        assert!(filter.enables("a"));
        assert!(errors[0].to_string().contains("`a=maybe`"));
        assert_eq!(
            Filter::parse_strict("x=on,y=sometimes")
                .unwrap_err()
                .directive,
            "y=sometimes"
        );
    }
}
