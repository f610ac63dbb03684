//! A unified diff of two texts, line by line (Myers' shortest edit script), so that a fix can
//! be shown the way `git diff` and `diff -u` show changes.

/// One step of the edit script: a line kept, removed from the old text or added from the new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep(usize, usize),
    Delete(usize),
    Insert(usize),
}

/// `old` → `new` as a unified diff with `context` lines around each change, headed
/// `--- a/PATH` and `+++ b/PATH`; empty when the texts are equal.
pub fn unified_diff(old: &str, new: &str, path: &str, context: usize) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = edit_script(&a, &b);

    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Keep(..)))
        .map(|(i, _)| i)
        .collect();
    let mut k = 0;
    while let Some(&first) = changed.get(k) {
        // A hunk takes changes whose gap of kept lines is small enough for the contexts
        // to touch.
        let mut last = first;
        while let Some(&next) = changed.get(k + 1) {
            if next - last > 2 * context + 1 {
                break;
            }
            last = next;
            k += 1;
        }
        k += 1;
        let start = first.saturating_sub(context);
        let end = (last + context + 1).min(ops.len());
        hunk(&mut out, &ops[start..end], &a, &b);
    }
    out
}

/// Write one `@@` hunk of `ops`.
fn hunk(out: &mut String, ops: &[Op], a: &[&str], b: &[&str]) {
    // Where the hunk starts in each text: the first line it shows.
    let mut old_at = None;
    let mut new_at = None;
    let (mut old_len, mut new_len) = (0, 0);
    for op in ops {
        match *op {
            Op::Keep(i, j) => {
                old_at.get_or_insert(i);
                new_at.get_or_insert(j);
                old_len += 1;
                new_len += 1;
            }
            Op::Delete(i) => {
                old_at.get_or_insert(i);
                old_len += 1;
            }
            Op::Insert(j) => {
                new_at.get_or_insert(j);
                new_len += 1;
            }
        }
    }
    // A side without lines in the hunk is an empty text (any other hunk has context):
    // `-0,0`, as diff -u writes it.
    let range = |at: Option<usize>, len: usize| match (at, len) {
        (Some(at), 1) => format!("{}", at + 1),
        (Some(at), n) => format!("{},{n}", at + 1),
        (None, _) => "0,0".to_string(),
    };
    out.push_str(&format!(
        "@@ -{} +{} @@\n",
        range(old_at, old_len),
        range(new_at, new_len)
    ));
    for op in ops {
        let (mark, line) = match *op {
            Op::Keep(i, _) => (' ', a.get(i)),
            Op::Delete(i) => ('-', a.get(i)),
            Op::Insert(j) => ('+', b.get(j)),
        };
        let line = line.copied().unwrap_or("");
        out.push(mark);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// The shortest edit script from `a` to `b` (Myers, 1986), with the common head and tail
/// taken off first.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);

    let mut ops: Vec<Op> = (0..head).map(|i| Op::Keep(i, i)).collect();
    ops.extend(myers(ma, mb).into_iter().map(|op| match op {
        Op::Keep(i, j) => Op::Keep(i + head, j + head),
        Op::Delete(i) => Op::Delete(i + head),
        Op::Insert(j) => Op::Insert(j + head),
    }));
    let (ta, tb) = (a.len() - tail, b.len() - tail);
    ops.extend((0..tail).map(|k| Op::Keep(ta + k, tb + k)));
    ops
}

fn myers(a: &[&str], b: &[&str]) -> Vec<Op> {
    let mut ops = Vec::with_capacity(a.len() + b.len());
    diff_into(a, b, 0, 0, &mut ops);
    ops
}

/// Myers' algorithm in linear space: find where the forward and backward searches meet (the
/// middle of a shortest edit path), split there and recurse. Time O((N + M) · D), memory
/// O(N + M): a fix that touches every line of a 10,000-line file stays fast.
fn diff_into(a: &[&str], b: &[&str], a0: usize, b0: usize, ops: &mut Vec<Op>) {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    ops.extend((0..head).map(|k| Op::Keep(a0 + k, b0 + k)));
    let (a, b) = (&a[head..], &b[head..]);
    let (a0, b0) = (a0 + head, b0 + head);
    let tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - tail], &b[..b.len() - tail]);
    if a.is_empty() {
        ops.extend((0..b.len()).map(|j| Op::Insert(b0 + j)));
    } else if b.is_empty() {
        ops.extend((0..a.len()).map(|i| Op::Delete(a0 + i)));
    } else if let Some((x, y)) = middle(a, b) {
        diff_into(&a[..x], &b[..y], a0, b0, ops);
        diff_into(&a[x..], &b[y..], a0 + x, b0 + y, ops);
    } else {
        ops.extend((0..a.len()).map(|i| Op::Delete(a0 + i)));
        ops.extend((0..b.len()).map(|j| Op::Insert(b0 + j)));
    }
    let (ta, tb) = (a0 + a.len(), b0 + b.len());
    ops.extend((0..tail).map(|k| Op::Keep(ta + k, tb + k)));
}

/// How far [`middle`] searches before it settles for a coarser diff.
const MAX_EDITS: isize = 1024;

/// A point `(x, y)` on a shortest edit path from `a` to `b` where the forward and the
/// backward searches overlap; `a` and `b` are non-empty and differ at both ends.
fn middle(a: &[&str], b: &[&str]) -> Option<(usize, usize)> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max_d = (n + m + 1) / 2;
    let offset = max_d;
    let len = (2 * max_d + 2) as usize;
    let mut v1 = vec![-1isize; len];
    let mut v2 = vec![-1isize; len];
    v1[(offset + 1) as usize] = 0;
    v2[(offset + 1) as usize] = 0;
    let delta = n - m;
    // With an odd delta the forward search meets the backward one; with even, the reverse.
    let front = delta % 2 != 0;
    let (mut k1start, mut k1end, mut k2start, mut k2end) = (0isize, 0isize, 0isize, 0isize);
    let idx = |k: isize| (offset + k) as usize;
    let in_range = |k: isize| offset + k >= 0 && ((offset + k) as usize) < len;
    // Past this many edits the search gives up and the caller shows the region as removed
    // and added: still a correct diff, and the cost stays linear in the text's size.
    for d in 0..max_d.min(MAX_EDITS) {
        let mut k1 = -d + k1start;
        while k1 <= d - k1end {
            let mut x1 = if k1 == -d || (k1 != d && v1[idx(k1 - 1)] < v1[idx(k1 + 1)]) {
                v1[idx(k1 + 1)]
            } else {
                v1[idx(k1 - 1)] + 1
            };
            let mut y1 = x1 - k1;
            while x1 < n && y1 < m && a[x1 as usize] == b[y1 as usize] {
                x1 += 1;
                y1 += 1;
            }
            v1[idx(k1)] = x1;
            if x1 > n {
                k1end += 2;
            } else if y1 > m {
                k1start += 2;
            } else if front {
                let k2 = delta - k1;
                if in_range(k2) && v2[idx(k2)] != -1 && x1 >= n - v2[idx(k2)] {
                    return Some((x1 as usize, y1 as usize));
                }
            }
            k1 += 2;
        }
        let mut k2 = -d + k2start;
        while k2 <= d - k2end {
            let mut x2 = if k2 == -d || (k2 != d && v2[idx(k2 - 1)] < v2[idx(k2 + 1)]) {
                v2[idx(k2 + 1)]
            } else {
                v2[idx(k2 - 1)] + 1
            };
            let mut y2 = x2 - k2;
            while x2 < n && y2 < m && a[(n - x2 - 1) as usize] == b[(m - y2 - 1) as usize] {
                x2 += 1;
                y2 += 1;
            }
            v2[idx(k2)] = x2;
            if x2 > n {
                k2end += 2;
            } else if y2 > m {
                k2start += 2;
            } else if !front {
                let k1 = delta - k2;
                if in_range(k1) && v1[idx(k1)] != -1 {
                    let x1 = v1[idx(k1)];
                    let y1 = x1 - k1;
                    if x1 >= n - x2 {
                        return Some((x1 as usize, y1 as usize));
                    }
                }
            }
            k2 += 2;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of a seeded pseudo-random text over a small alphabet (many repeats).
    fn random_lines(seed: &mut u64, n: usize) -> String {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("{}\n", (*seed >> 33) % 5)
            })
            .collect()
    }

    /// The length of a longest common subsequence, by the textbook table.
    fn lcs(a: &[&str], b: &[&str]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..a.len() {
            for j in 0..b.len() {
                t[i + 1][j + 1] = if a[i] == b[j] {
                    t[i][j] + 1
                } else {
                    t[i][j + 1].max(t[i + 1][j])
                };
            }
        }
        t[a.len()][b.len()]
    }

    #[test]
    fn a_text_changed_everywhere_diffs_correctly_in_bounded_time() {
        let old: String = (0..20_000).map(|i| format!("RUN echo {i}\n")).collect();
        let new: String = (0..20_000)
            .map(|i| format!("    echo {i} && \\\n"))
            .collect();
        replay(&old, &new);
        let d = unified_diff(&old, &new, "Dockerfile", 3);
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count(),
            20_000
        );
    }

    #[test]
    fn edit_scripts_are_shortest_on_random_texts() {
        let mut seed = 7;
        for _ in 0..300 {
            let (na, nb) = ((seed % 13) as usize, (seed % 11) as usize);
            let a = random_lines(&mut seed, na);
            let b = random_lines(&mut seed, nb);
            replay(&a, &b);
            let la: Vec<&str> = a.split_inclusive('\n').collect();
            let lb: Vec<&str> = b.split_inclusive('\n').collect();
            let kept = edit_script(&la, &lb)
                .iter()
                .filter(|op| matches!(op, Op::Keep(..)))
                .count();
            assert_eq!(kept, lcs(&la, &lb), "{a:?} -> {b:?}");
        }
    }

    /// Apply a diff's edit script to `a` and check it gives `b`.
    fn replay(a: &str, b: &str) {
        let la: Vec<&str> = a.split_inclusive('\n').collect();
        let lb: Vec<&str> = b.split_inclusive('\n').collect();
        let mut out = String::new();
        for op in edit_script(&la, &lb) {
            match op {
                Op::Keep(i, j) => {
                    assert_eq!(la[i], lb[j]);
                    out.push_str(la[i]);
                }
                Op::Insert(j) => out.push_str(lb[j]),
                Op::Delete(_) => {}
            }
        }
        assert_eq!(out, b);
    }

    #[test]
    fn edit_scripts_rebuild_the_new_text() {
        let cases = [
            ("", "a\n"),
            ("a\n", ""),
            ("a\nb\nc\n", "a\nc\n"),
            ("a\nb\nc\n", "x\na\nb\ny\nc\nz"),
            ("a\nb\na\nb\n", "b\na\nb\na\n"),
            ("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\nX\n4\n5\n6\n7\nY\n9\n"),
        ];
        for (a, b) in cases {
            replay(a, b);
            replay(b, a);
        }
    }

    #[test]
    fn unified_format_with_context_and_separate_hunks() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old.replacen("3\n", "three\n", 1).replace("17\n", "");
        let d = unified_diff(&old, &new, "Dockerfile", 3);
        assert_eq!(
            d,
            "--- a/Dockerfile\n+++ b/Dockerfile\n\
             @@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n\
             @@ -14,7 +14,6 @@\n 14\n 15\n 16\n-17\n 18\n 19\n 20\n"
        );
        assert_eq!(unified_diff(&old, &old, "Dockerfile", 3), "");
    }

    #[test]
    fn missing_final_newline_and_empty_sides() {
        let d = unified_diff("a\nb", "a\nc\n", "f", 3);
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
        );
        let d = unified_diff("", "x\n", "f", 3);
        assert_eq!(d, "--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+x\n");
        let d = unified_diff("x\n", "", "f", 3);
        assert_eq!(d, "--- a/f\n+++ b/f\n@@ -1 +0,0 @@\n-x\n");
    }
}
