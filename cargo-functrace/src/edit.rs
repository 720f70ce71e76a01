//! Inserting and removing the attribute at the sites found by the scanner.
//! Works on the raw text: every byte outside the inserted/removed text is
//! kept as is, the file is never reprinted.
//!
//! The inserted text is `ATTR + newline + indentation` when the function's
//! first token starts its line (the newline is `\r\n` on CRLF lines), and
//! `ATTR + " "` otherwise. Removal deletes exactly that text, and only when
//! it sits exactly where insertion would have put it.

use crate::scan::{Site, FULL_ATTR, SHORT_ATTR};

/// Inserts each site's attribute; `sites` must be sorted by offset.
pub fn insert(src: &str, sites: &[Site]) -> String {
    let mut out = String::with_capacity(src.len() + sites.len() * (FULL_ATTR.len() + 8));
    let mut copied = 0;
    for site in sites {
        out.push_str(&src[copied..site.offset]);
        let before = &src[line_start(src, site.offset)..site.offset];
        out.push_str(site.attr());
        if is_indent(before) {
            out.push_str(line_ending(src, site.offset));
            out.push_str(before);
        } else {
            out.push(' ');
        }
        copied = site.offset;
    }
    out.push_str(&src[copied..]);
    out
}

/// Removes the attribute `insert` would have put at each site, where it is
/// present; returns the new text and the number of removed attributes.
/// `sites` must be sorted by offset.
pub fn remove(src: &str, sites: &[Site]) -> (String, usize) {
    let mut out = String::with_capacity(src.len());
    let mut copied = 0;
    let mut removed = 0;
    for site in sites {
        if let Some(start) = inserted_start(src, site) {
            out.push_str(&src[copied..start]);
            copied = site.offset;
            removed += 1;
        }
    }
    out.push_str(&src[copied..]);
    (out, removed)
}

/// Where the text `insert` would have added before `site` starts, if it is there.
fn inserted_start(src: &str, site: &Site) -> Option<usize> {
    let start = line_start(src, site.offset);
    let before = &src[start..site.offset];
    // `#[functrace::trace]` is always recognised: the file may have gained
    // `use functrace::trace;` after `add` ran.
    let attrs: &[&str] = if site.imported {
        &[FULL_ATTR, SHORT_ATTR]
    } else {
        &[FULL_ATTR]
    };
    if is_indent(before) {
        // `<indent>ATTR<newline><indent>` with the same indentation twice.
        let above = src[..start].strip_suffix('\n')?;
        let above = above.strip_suffix('\r').unwrap_or(above);
        attrs.iter().find_map(|attr| {
            let attr_start = above.strip_suffix(attr)?.len();
            let attr_line = line_start(src, attr_start);
            (&src[attr_line..attr_start] == before).then_some(attr_start)
        })
    } else {
        // `<something> ATTR <first token>` on one line.
        let before = before.strip_suffix(' ')?;
        attrs.iter().find_map(|attr| {
            let prefix = before.strip_suffix(attr)?;
            (!is_indent(prefix)).then_some(start + prefix.len())
        })
    }
}

/// Whether `s` is only indentation, i.e. a token after it is first on its line.
fn is_indent(s: &str) -> bool {
    s.chars().all(|c| c == ' ' || c == '\t')
}

/// Byte offset of the start of the line containing `offset` (after a BOM on line 1).
fn line_start(src: &str, offset: usize) -> usize {
    match src[..offset].rfind('\n') {
        Some(i) => i + 1,
        None if src.starts_with('\u{feff}') => '\u{feff}'.len_utf8(),
        None => 0,
    }
}

/// The line ending used by the line containing `offset`, or by the line
/// before it when that line is the last one and has none.
fn line_ending(src: &str, offset: usize) -> &'static str {
    let crlf = match src[offset..].find('\n') {
        Some(i) => src[..offset + i].ends_with('\r'),
        None => src[..line_start(src, offset)].ends_with("\r\n"),
    };
    if crlf {
        "\r\n"
    } else {
        "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{scan, Mode};

    fn add(src: &str) -> String {
        insert(src, &scan(src, Mode::Add { tests: false }).unwrap())
    }

    fn undo(src: &str) -> (String, usize) {
        remove(src, &scan(src, Mode::Remove).unwrap())
    }

    /// Checks `add` gives `expected`, is idempotent, and `remove` restores `src`.
    fn round_trip(src: &str, expected: &str) {
        let added = add(src);
        assert_eq!(added, expected);
        assert_eq!(add(&added), added, "second add changed something");
        let (removed, count) = undo(&added);
        assert_eq!(removed, src);
        assert_eq!(count, scan(src, Mode::Add { tests: false }).unwrap().len());
    }

    #[test]
    fn own_line_keeps_indentation_and_docs() {
        round_trip(
            "/// Doc.\n#[inline]\npub fn a() {}\n\nimpl A {\n    /// Doc.\n    fn b(&self) {}\n}\n",
            "/// Doc.\n#[inline]\n#[functrace::trace]\npub fn a() {}\n\nimpl A {\n    /// Doc.\n    #[functrace::trace]\n    fn b(&self) {}\n}\n",
        );
    }

    #[test]
    fn inline_when_not_first_on_line() {
        round_trip(
            "impl A { fn a() {} fn b() {} }",
            "impl A { #[functrace::trace] fn a() {} #[functrace::trace] fn b() {} }",
        );
        round_trip(
            "#[inline] pub fn a() {}\n/* c */  fn b() {}\n",
            "#[inline] #[functrace::trace] pub fn a() {}\n/* c */  #[functrace::trace] fn b() {}\n",
        );
    }

    #[test]
    fn tabs_crlf_and_multibyte() {
        round_trip(
            "mod m {\r\n\t// ünïcödé 😀\r\n\tfn a() {} /* é */ fn b() {}\r\n\t\t  fn c() {}\r\n}",
            "mod m {\r\n\t// ünïcödé 😀\r\n\t#[functrace::trace]\r\n\tfn a() {} /* é */ #[functrace::trace] fn b() {}\r\n\t\t  #[functrace::trace]\r\n\t\t  fn c() {}\r\n}",
        );
    }

    #[test]
    fn last_line_without_newline_and_bom() {
        round_trip("fn a() {}", "#[functrace::trace]\nfn a() {}");
        round_trip(
            "x!();\r\nfn a() {}",
            "x!();\r\n#[functrace::trace]\r\nfn a() {}",
        );
        round_trip(
            "\u{feff}fn a() {}\n",
            "\u{feff}#[functrace::trace]\nfn a() {}\n",
        );
    }

    #[test]
    fn short_form_where_imported() {
        round_trip(
            "use functrace::trace;\n\nfn a() {}\nmod m {\n    fn b() {}\n}\n",
            "use functrace::trace;\n\n#[trace]\nfn a() {}\nmod m {\n    #[functrace::trace]\n    fn b() {}\n}\n",
        );
    }

    #[test]
    fn remove_only_touches_the_inserted_form_and_position() {
        let untouched = [
            // Not directly before the first token.
            "#[functrace::trace]\n#[inline]\nfn a() {}\n",
            // Different indentation.
            "  #[functrace::trace]\nfn a() {}\n",
            "#[functrace::trace]\n    fn a() {}\n",
            // Other forms.
            "#[functrace::trace()]\nfn a() {}\n",
            "#[::functrace::trace]\nfn a() {}\n",
            "#[functrace::trace]  fn a() {}\n",
            "#[functrace::trace] fn a() {}\n",
            "#[inline]#[functrace::trace]\nfn a() {}\n",
            // `#[trace]` without the import may be someone else's attribute.
            "use fastrace::trace;\n#[trace]\nfn a() {}\n",
            "#[trace]\nfn a() {}\n",
            // Not a function `add` annotates.
            "#[functrace::trace]\nconst fn a() {}\n",
            // In a comment.
            "// #[functrace::trace]\nfn a() {}\n",
        ];
        for src in untouched {
            assert_eq!(undo(src), (src.to_string(), 0), "{src:?}");
        }
    }

    #[test]
    fn remove_handwritten_attribute_in_inserted_form() {
        // The documented limitation: this is indistinguishable from `add` output.
        let src = "use functrace::trace;\n#[trace]\nfn a() {}\n#[functrace::trace]\nfn b() {}\n";
        assert_eq!(
            undo(src),
            (
                "use functrace::trace;\nfn a() {}\nfn b() {}\n".to_string(),
                2
            )
        );
    }

    #[test]
    fn remove_after_add_with_tests() {
        let src = "fn a() {}\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {}\n}\n";
        let added = insert(src, &scan(src, Mode::Add { tests: true }).unwrap());
        assert_eq!(added.matches(FULL_ATTR).count(), 2);
        assert_eq!(undo(&added), (src.to_string(), 2));
    }
}
