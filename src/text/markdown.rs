//! Purpose: put values from outside (parameters, logins, refs, step notes, job and step names, anything a
//! comment or a payload carried) into GitHub Markdown so they render literally: as an inline code span that no
//! backtick can close, or as text whose emphasis, link, HTML and table characters are escaped. A value never
//! spans lines: line breaks become spaces, so it cannot end a table row or start a block.

/// Characters escaped in [`text`]: each can start emphasis, a link, HTML, an entity, strikethrough, a code span,
/// a table cell or an escape.
const SPECIAL: &[char] = &[
    '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&', '!', '#', '(', ')',
];

/// `value` as one line: CR, LF and the other line separators become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            c => c,
        })
        .collect()
}

/// `value` as plain Markdown text: every character that could start Markdown syntax (the private `SPECIAL` list)
/// backslash-escaped (so `**x**` shows its asterisks, `<img>` is text, and `|` cannot end a table cell), on one line.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in one_line(value).chars() {
        if SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `value` as an inline code span outside tables: fenced by one backtick more than its longest run of
/// backticks (CommonMark's rule), padded with a space on each side when it starts or ends with a backtick or a
/// space (the parser strips exactly one), on one line. An empty value is a code span holding one space.
pub fn code(value: &str) -> String {
    let value = one_line(value);
    if value.is_empty() {
        return "` `".to_string();
    }
    let longest = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if value.starts_with(['`', ' ']) || value.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{value}{pad}{fence}")
}

/// [`code`] for a table cell: GitHub splits table rows at `|` before it reads code spans, so each `|` is
/// written `\|` (which the table parser turns back into `|` inside the span).
pub fn code_in_cell(value: &str) -> String {
    code(value).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_any_backticks() {
        assert_eq!(code("build"), "`build`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code(" lead"), "`  lead `");
        assert_eq!(code(""), "` `");
        assert_eq!(code("two\nlines\r"), "` two lines  `");
        assert_eq!(code_in_cell("a|b`"), "`` a\\|b` ``");
    }

    #[test]
    fn text_escapes_what_markdown_would_act_on() {
        assert_eq!(
            text("**bold** _it_ [l](u) <img src=x> a|b ~~s~~ `c` \\ &amp; ![i](x) #h"),
            "\\*\\*bold\\*\\* \\_it\\_ \\[l\\]\\(u\\) \\<img src=x\\> a\\|b \\~\\~s\\~\\~ \\`c\\` \\\\ \\&amp; \\!\\[i\\]\\(x\\) \\#h"
        );
        assert_eq!(text("a\nb"), "a b");
        assert_eq!(text("plain-name_ok"), "plain-name\\_ok");
    }
}
