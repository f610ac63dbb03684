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
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = n + m;
    if max == 0 {
        return Vec::new();
    }
    let off = max + 1;
    let at = |k: isize| (k + off) as usize;
    let mut v = vec![0isize; (2 * max + 3) as usize];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    'outer: for d in 0..=max {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
                v[at(k + 1)]
            } else {
                v[at(k - 1)] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[at(k)] = x;
            if x >= n && y >= m {
                break 'outer;
            }
            k += 2;
        }
    }

    // Walk back through the saved frontiers.
    let mut ops = Vec::new();
    let (mut x, mut y) = (n, m);
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        let k = x - y;
        let prev_k = if k == -d || (k != d && v[at(k - 1)] < v[at(k + 1)]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = v[at(prev_k)];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            ops.push(Op::Keep((x - 1) as usize, (y - 1) as usize));
            x -= 1;
            y -= 1;
        }
        if d > 0 {
            if x == prev_x {
                ops.push(Op::Insert((y - 1) as usize));
            } else {
                ops.push(Op::Delete((x - 1) as usize));
            }
            x = prev_x;
            y = prev_y;
        }
    }
    ops.reverse();
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

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
