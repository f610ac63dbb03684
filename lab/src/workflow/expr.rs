//! `${{ }}` as the box evaluates it: what workflows use, and a clear error for the rest.
//!
//! An expression is terms joined by `||` (the first non-empty one wins, as GitHub's `||`
//! returns its first truthy operand); a term is a string literal (`'…'`) or a context path:
//! `github.*`, `runner.*`, `env.*`, `secrets.*` (an unset secret is empty, as on GitHub),
//! `steps.ID.outputs.NAME`, `steps.ID.outcome`, `inputs.*`. An `if:` is one of the status
//! functions `success()`, `always()`, `failure()`, `cancelled()` (or `!cancelled()`).

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// What expressions read.
#[derive(Debug, Clone, Default)]
pub struct Contexts {
    pub github: BTreeMap<String, String>,
    pub runner: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// Per step id: its outputs, and `outcome`.
    pub steps: BTreeMap<String, BTreeMap<String, String>>,
    pub outcomes: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, String>,
}

/// `text` with every `${{ … }}` replaced by its value.
pub fn interpolate(text: &str, cx: &Contexts) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            bail!("an unclosed `${{{{` in {text:?}");
        };
        out.push_str(&evaluate(after[..end].trim(), Some(cx))?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether every `${{ … }}` of `text` is one the box evaluates (nothing is read).
pub fn check(text: &str) -> Result<()> {
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            bail!("an unclosed `${{{{` in {text:?}");
        };
        evaluate(after[..end].trim(), None)?;
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Evaluate one expression; with no contexts, only check that it can be.
fn evaluate(expr: &str, cx: Option<&Contexts>) -> Result<String> {
    let mut last = String::new();
    for term in expr.split("||").map(str::trim) {
        last = term_value(term, cx)?;
        if !last.is_empty() {
            return Ok(last);
        }
    }
    Ok(last)
}

fn term_value(term: &str, cx: Option<&Contexts>) -> Result<String> {
    if let Some(lit) = term.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(lit.replace("''", "'"));
    }
    let parts: Vec<&str> = term.split('.').collect();
    let valid = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if parts.len() < 2 || !parts.iter().all(|p| valid(p)) {
        bail!(
            "`${{{{ {term} }}}}`: the runner box evaluates context paths (github, runner, env, \
             secrets, steps, inputs), string literals and `||`, not this"
        );
    }
    let get = |map: &BTreeMap<String, String>, key: &str| map.get(key).cloned().unwrap_or_default();
    let value = match (parts[0], &parts[1..]) {
        ("github", [key]) => cx.map(|c| get(&c.github, key)),
        ("runner", [key]) => cx.map(|c| get(&c.runner, key)),
        ("env", [key]) => cx.map(|c| get(&c.env, key)),
        ("secrets", [key]) => cx.map(|c| get(&c.secrets, key)),
        ("inputs", [key]) => cx.map(|c| get(&c.inputs, key)),
        ("steps", [id, "outputs", key]) => cx.map(|c| {
            c.steps
                .get(*id)
                .and_then(|o| o.get(*key))
                .cloned()
                .unwrap_or_default()
        }),
        ("steps", [id, "outcome" | "conclusion"]) => cx.map(|c| get(&c.outcomes, id)),
        _ => bail!("`${{{{ {term} }}}}`: not a context the runner box provides"),
    };
    Ok(value.unwrap_or_default())
}

/// An `if:` the box knows.
pub fn condition_known(condition: &str) -> Result<()> {
    condition_met(condition, false).map(drop)
}

/// Whether a step with `if: condition` runs, after a job that has (`failed`) or has not
/// failed so far.
pub fn condition_met(condition: &str, failed: bool) -> Result<bool> {
    let c = condition.trim();
    let c = c
        .strip_prefix("${{")
        .and_then(|c| c.strip_suffix("}}"))
        .unwrap_or(c)
        .trim();
    Ok(match c {
        "success()" => !failed,
        "always()" | "!cancelled()" => true,
        "failure()" => failed,
        "cancelled()" => false,
        _ => bail!(
            "if: {condition:?}: the runner box evaluates success(), always(), failure(), \
             cancelled() and !cancelled()"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_workflows_use_evaluates_and_the_rest_is_refused() {
        let mut cx = Contexts::default();
        cx.secrets.insert("B".into(), "b".into());
        cx.runner.insert("temp".into(), "/t".into());
        cx.steps
            .entry("img".into())
            .or_default()
            .insert("digest".into(), "sha256:1".into());
        let s = "${{ secrets.A || secrets.B }} ${{runner.temp}}/x ${{ steps.img.outputs.digest }}";
        assert_eq!(interpolate(s, &cx).unwrap(), "b /t/x sha256:1");
        assert_eq!(interpolate("${{ secrets.A }}", &cx).unwrap(), "");
        assert_eq!(interpolate("${{ 'it''s' }}", &cx).unwrap(), "it's");
        assert!(interpolate("${{ hashFiles('x') }}", &cx).is_err());
        assert!(interpolate("${{ matrix.x }}", &cx).is_err());
        assert!(check("${{ github.ref }}").is_ok());
        assert!(condition_met("always()", true).unwrap());
        assert!(!condition_met("${{ success() }}", true).unwrap());
        assert!(condition_met("failure()", true).unwrap());
        assert!(condition_met("github.ref == 'x'", false).is_err());
    }
}
