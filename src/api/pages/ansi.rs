//! Purpose: step output's ANSI colours on the job page, safely. A line is cut into runs of text, each with the CSS
//! classes of the SGR attributes in force (`b` bold, `d` dim, `i` italic, `u` underline, `f0`–`f15` foreground,
//! `g0`–`g15` background; 256-colour indexes above 15 and 24-bit colours have no class and show in the default
//! colour, since the page's CSP forbids inline styles). Every other escape sequence (cursor moves, OSC titles and
//! clipboard writes, …) and every other control character but tab is dropped: the text that remains is escaped by
//! the template like any other. `/assets/live.js` does the same for the lines it streams in.

/// A run of text and the classes of its attributes (empty: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    /// Space-separated CSS classes.
    pub(super) class: String,
    /// The text, control characters removed (not yet HTML-escaped).
    pub(super) text: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Attrs {
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Attrs {
    fn class(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (on, name) in [
            (self.bold, "b"),
            (self.dim, "d"),
            (self.italic, "i"),
            (self.underline, "u"),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
        if let Some(c) = self.fg {
            parts.push(format!("f{c}"));
        }
        if let Some(c) = self.bg {
            parts.push(format!("g{c}"));
        }
        parts.join(" ")
    }

    /// Applies one SGR sequence's parameters.
    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = params
            .split([';', ':'])
            .map(|p| p.parse::<u16>().unwrap_or(0))
            .collect();
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Attrs::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                c @ 30..=37 => self.fg = Some((c - 30) as u8),
                c @ 90..=97 => self.fg = Some((c - 90 + 8) as u8),
                39 => self.fg = None,
                c @ 40..=47 => self.bg = Some((c - 40) as u8),
                c @ 100..=107 => self.bg = Some((c - 100 + 8) as u8),
                49 => self.bg = None,
                c @ (38 | 48) => {
                    // 38;5;n / 38;2;r;g;b: only the 16 base colours have a class.
                    let colour = match codes.get(i + 1) {
                        Some(5) => {
                            let n = codes.get(i + 2).copied();
                            i += 2;
                            n.filter(|n| *n < 16).map(|n| n as u8)
                        }
                        Some(2) => {
                            i += 4;
                            None
                        }
                        _ => None,
                    };
                    if c == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// The runs of one line of step output.
pub(super) fn runs(line: &str) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut attrs = Attrs::default();
    let mut text = String::new();
    let flush = |out: &mut Vec<Run>, text: &mut String, attrs: &Attrs| {
        if text.is_empty() {
            return;
        }
        let class = attrs.class();
        // A sequence that changes nothing shown (or only an uncoloured attribute) does not cut the run.
        match out.last_mut() {
            Some(last) if last.class == class => last.text.push_str(&std::mem::take(text)),
            _ => out.push(Run {
                class,
                text: std::mem::take(text),
            }),
        }
    };
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut last = None;
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            last = Some(c);
                            break;
                        }
                        if params.len() < 64 {
                            params.push(c);
                        }
                    }
                    if last == Some('m') {
                        flush(&mut out, &mut text, &attrs);
                        attrs.apply(&params);
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ST (ESC \).
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\t' => text.push(c),
            c if c.is_control() || is_bidi_control(c) => {}
            c => text.push(c),
        }
    }
    flush(&mut out, &mut text, &attrs);
    out
}

/// The invisible characters that reorder text (a line could otherwise disguise what it says).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// A line's text without its escape sequences (what a search of the page matches and the title shows).
pub(super) fn plain(line: &str) -> String {
    runs(line).into_iter().map(|r| r.text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(class: &str, text: &str) -> Run {
        Run {
            class: class.into(),
            text: text.into(),
        }
    }

    #[test]
    fn colours_become_classes() {
        assert_eq!(
            runs("plain \u{1b}[1;31mred bold\u{1b}[0m back \u{1b}[92;44mhi\u{1b}[39mx"),
            vec![
                run("", "plain "),
                run("b f1", "red bold"),
                run("", " back "),
                run("f10 g4", "hi"),
                run("g4", "x"),
            ]
        );
        assert_eq!(
            runs("\u{1b}[38;5;9mA\u{1b}[38;5;200mB\u{1b}[38;2;1;2;3mC\u{1b}[mD"),
            vec![run("f9", "A"), run("", "BCD")]
        );
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        let hostile = "a\u{1b}]52;c;ZXZpbA==\u{7}b\u{1b}]0;title\u{1b}\\c\u{1b}[2Jd\u{7}e\u{202e}f\tg<script>";
        assert_eq!(runs(hostile), vec![run("", "abcdef\tg<script>")]);
        assert_eq!(plain("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(
            runs("unterminated \u{1b}[31"),
            vec![run("", "unterminated ")]
        );
        assert_eq!(runs(""), vec![]);
    }
}
