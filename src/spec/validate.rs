//! Rules of the config language that are not about YAML shapes: name syntax, branch globs, the
//! concurrency group template, and the step DAG (`needs` resolution and cycle detection).
//! Everything here is pure and position-free; the grammar (`grammar/`) attaches line and column
//! to what it reports.

use std::collections::{BTreeMap, VecDeque};

use super::suggest::suggest;
use super::{BranchTrigger, JobSpec, ResolvedParams};

/// `[a-z0-9][a-z0-9_-]{0,63}`: job names and command aliases.
pub(crate) fn is_job_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `[A-Za-z0-9_-]{1,64}`: step ids.
pub(crate) fn is_step_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `[a-z][a-z0-9_-]{0,63}`: parameter names.
pub(crate) fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `[A-Za-z_][A-Za-z0-9_]*`: environment variable names.
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && s.len() <= 256
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GlobToken {
    /// `*`: any run of characters except `/`.
    Star,
    /// `**`: any run of characters.
    DoubleStar,
    /// `?`: one character except `/`.
    One,
    Literal(char),
}

fn glob_tokens(pattern: &str) -> Vec<GlobToken> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                out.push(GlobToken::DoubleStar);
            }
            '*' => out.push(GlobToken::Star),
            '?' => out.push(GlobToken::One),
            c => out.push(GlobToken::Literal(c)),
        }
    }
    out
}

/// Whether `text` matches the glob `pattern` (`*`, `**`, `?`); linear-time DP, no backtracking.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let tokens = glob_tokens(pattern);
    let text: Vec<char> = text.chars().collect();
    // reach[j]: the tokens consumed so far can match text[..j].
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            GlobToken::Star | GlobToken::DoubleStar => {
                let mut open = false;
                for j in 0..=text.len() {
                    if reach[j] {
                        open = true;
                    }
                    next[j] = open;
                    if token == GlobToken::Star && text.get(j) == Some(&'/') {
                        open = false;
                    }
                }
            }
            GlobToken::One | GlobToken::Literal(_) => {
                for j in 0..text.len() {
                    let ok = match token {
                        GlobToken::One => text[j] != '/',
                        GlobToken::Literal(c) => text[j] == c,
                        _ => false,
                    };
                    if reach[j] && ok {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[text.len()]
}

/// Applies a branch filter: patterns in order, a leading `!` excludes; empty matches every branch.
pub(crate) fn branch_filter_matches(patterns: &[String], branch: &str) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let mut matched = false;
    for p in patterns {
        if let Some(negated) = p.strip_prefix('!') {
            if glob_match(negated, branch) {
                matched = false;
            }
        } else if glob_match(p, branch) {
            matched = true;
        }
    }
    matched
}

/// One piece of a concurrency group template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart<'a> {
    /// Text copied as is.
    Literal(&'a str),
    /// `${{ job }}`.
    Job,
    /// `${{ params.<name> }}`.
    Param(&'a str),
}

/// Splits a template into parts; the error says what is wrong with it.
pub(crate) fn parse_template(template: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            parts.push(TemplatePart::Literal(&rest[..start]));
        }
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            return Err("unclosed `${{` in template; close it with `}}`".to_owned());
        };
        let expr = after[..end].trim();
        if expr == "job" {
            parts.push(TemplatePart::Job);
        } else if let Some(name) = expr.strip_prefix("params.") {
            parts.push(TemplatePart::Param(name.trim()));
        } else {
            return Err(format!(
                "unknown expression `{expr}` in template; only `${{{{ params.<name> }}}}` and `${{{{ job }}}}` are allowed"
            ));
        }
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest));
    }
    Ok(parts)
}

/// Fills in a template; a parameter without a value becomes the empty string.
pub(crate) fn render_template(template: &str, job: &str, params: &ResolvedParams) -> String {
    match parse_template(template) {
        Ok(parts) => parts
            .into_iter()
            .map(|p| match p {
                TemplatePart::Literal(s) => s.to_owned(),
                TemplatePart::Job => job.to_owned(),
                TemplatePart::Param(name) => params
                    .get(name)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            })
            .collect(),
        Err(_) => template.to_owned(),
    }
}

/// A step as far as the DAG is concerned.
pub(crate) struct DagStep<'a> {
    /// The step id.
    pub(crate) id: &'a str,
    /// `needs` as written, or `None` when absent.
    pub(crate) needs: Option<Vec<&'a str>>,
}

/// A problem with `needs`, located by step index and (for one entry) index within `needs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DagError {
    pub(crate) step: usize,
    pub(crate) need: Option<usize>,
    pub(crate) message: String,
}

/// Resolves every step's `needs` (absent → the previous step) and checks the graph.
///
/// Returns the resolved lists, index-aligned with `steps`, and the problems found: unknown ids
/// (with suggestions), a step needing itself, an id listed twice, and cycles (each named once).
pub(crate) fn resolve_needs(steps: &[DagStep<'_>]) -> (Vec<Vec<String>>, Vec<DagError>) {
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let mut errors = Vec::new();
    let mut resolved = Vec::with_capacity(steps.len());
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(steps.len());
    let mut suggestions_left = 50usize;
    for (i, step) in steps.iter().enumerate() {
        match &step.needs {
            None => {
                let prev = i.checked_sub(1).and_then(|p| steps.get(p));
                resolved.push(prev.map(|p| vec![p.id.to_owned()]).unwrap_or_default());
                edges.push(i.checked_sub(1).into_iter().collect());
            }
            Some(needs) => {
                let mut list = Vec::new();
                let mut out = Vec::new();
                let mut seen = std::collections::BTreeSet::new();
                for (k, need) in needs.iter().enumerate() {
                    if *need == step.id {
                        errors.push(DagError {
                            step: i,
                            need: Some(k),
                            message: format!("step `{}` needs itself", step.id),
                        });
                    } else if !seen.insert(*need) {
                        errors.push(DagError {
                            step: i,
                            need: Some(k),
                            message: format!("step `{need}` is listed twice in `needs`"),
                        });
                    } else if let Some(&j) = index.get(need) {
                        list.push((*need).to_owned());
                        out.push(j);
                    } else {
                        // Each suggestion costs a string distance per step: bound the work.
                        suggestions_left = suggestions_left.saturating_sub(1);
                        let candidates = steps
                            .iter()
                            .take(if suggestions_left > 0 { 1000 } else { 0 })
                            .map(|s| s.id);
                        let hint = suggest(need, candidates)
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        errors.push(DagError {
                            step: i,
                            need: Some(k),
                            message: format!("`needs` names an unknown step `{need}`{hint}"),
                        });
                    }
                }
                resolved.push(list);
                edges.push(out);
            }
        }
    }
    for cycle in find_cycles(&edges) {
        let names: Vec<&str> = cycle
            .iter()
            .filter_map(|&i| steps.get(i).map(|s| s.id))
            .collect();
        let Some(first) = names.first().copied() else {
            continue;
        };
        let message = if names.len() <= 12 {
            format!("steps form a cycle: {} → {first}", names.join(" → "))
        } else {
            let head = names.get(..8).unwrap_or(&names).join(" → ");
            let tail = names.get(names.len() - 2..).unwrap_or(&[]).join(" → ");
            format!(
                "steps form a cycle of {} steps: {head} → … → {tail} → {first}",
                names.len()
            )
        };
        errors.push(DagError {
            step: cycle.first().copied().unwrap_or(0),
            need: None,
            message,
        });
    }
    (resolved, errors)
}

/// One cycle per strongly connected component of more than one node, each starting at its
/// earliest node and following `needs` edges. `edges[i]` are the steps `i` needs.
fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let components = strongly_connected(edges);
    let mut cycles = Vec::new();
    for comp in components.into_iter().filter(|c| c.len() > 1) {
        let Some(&start) = comp.iter().min() else {
            continue;
        };
        let in_comp = |n: usize| comp.contains(&n);
        // Shortest path start → … → start inside the component (BFS).
        let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(n) = queue.pop_front() {
            for &m in edges.get(n).map(Vec::as_slice).unwrap_or(&[]) {
                if !in_comp(m) {
                    continue;
                }
                if m == start {
                    closing = Some(n);
                    break 'bfs;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = parent.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        let Some(mut n) = closing else { continue };
        let mut path = vec![n];
        while n != start {
            match parent.get(&n) {
                Some(&p) => {
                    n = p;
                    path.push(n);
                }
                None => break,
            }
        }
        path.reverse();
        cycles.push(path);
    }
    cycles.sort();
    cycles
}

/// Tarjan's algorithm, iterative so that no input can exhaust the stack.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, next edge position)
        let mut work = vec![(root, 0usize)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            let succ = edges[v].get(*pos).copied();
            *pos += 1;
            match succ {
                Some(w) if w < n => {
                    if index[w] == usize::MAX {
                        index[w] = next_index;
                        low[w] = next_index;
                        next_index += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                }
                Some(_) => {}
                None => {
                    work.pop();
                    if let Some(&(parent, _)) = work.last() {
                        low[parent] = low[parent].min(low[v]);
                    }
                    if low[v] == index[v] {
                        let mut comp = Vec::new();
                        while let Some(w) = stack.pop() {
                            on_stack[w] = false;
                            comp.push(w);
                            if w == v {
                                break;
                            }
                        }
                        comp.sort_unstable();
                        out.push(comp);
                    }
                }
            }
        }
    }
    out
}

impl JobSpec {
    /// The job's concurrency group with `${{ params.x }}` and `${{ job }}` filled in.
    pub fn concurrency_group(&self, params: &ResolvedParams) -> Option<String> {
        let c = self.concurrency.as_ref()?;
        Some(render_template(&c.group, &self.name, params))
    }
}

impl BranchTrigger {
    /// Whether `branch` passes the filter; later patterns override earlier ones.
    pub fn matches(&self, branch: &str) -> bool {
        branch_filter_matches(&self.branches, branch)
    }
}
