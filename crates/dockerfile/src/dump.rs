//! The JSON dump (`cargo xtask lint --dump`): one object per instruction, the shape
//! documented in the crate documentation.

use serde_json::{Map, Value, json};

use crate::ast::{Args, Dockerfile, Instruction, Word};

impl Dockerfile {
    /// The dump: a JSON array with one object per instruction (see the crate documentation).
    pub fn dump(&self) -> Value {
        Value::Array(self.instructions.iter().map(dump_instruction).collect())
    }
}

fn texts(words: &[Word]) -> Vec<Value> {
    words
        .iter()
        .map(|w| Value::String(w.text.clone()))
        .collect()
}

fn dump_instruction(inst: &Instruction) -> Value {
    let mut m = Map::new();
    m.insert("line".into(), json!(inst.line));
    m.insert("end_line".into(), json!(inst.end_line));
    m.insert("instruction".into(), json!(inst.name()));
    m.insert(
        "flags".into(),
        Value::Array(inst.flags.iter().map(|f| Value::String(f.text())).collect()),
    );
    let args = |m: &mut Map<String, Value>, list: Vec<Value>| {
        m.insert("args".into(), Value::Array(list));
    };
    match &inst.args {
        Args::Empty => args(&mut m, Vec::new()),
        Args::Json(words) => {
            args(&mut m, texts(words));
            m.insert("json".into(), Value::Bool(true));
        }
        Args::Shell(text) => {
            m.insert("shell".into(), json!(text.text));
        }
        Args::Words(words) => args(&mut m, texts(words)),
        Args::Text(text) | Args::Unknown(text) => args(&mut m, texts(std::slice::from_ref(text))),
        Args::Pairs(pairs) => args(
            &mut m,
            pairs
                .iter()
                .map(|p| Value::String(p.to_docker_string()))
                .collect(),
        ),
        Args::Healthcheck { kind, command } => {
            let mut list = texts(std::slice::from_ref(kind));
            match command.as_ref() {
                Args::Json(words) => {
                    list.extend(texts(words));
                    m.insert("json".into(), Value::Bool(true));
                }
                Args::Shell(text) => {
                    m.insert("shell".into(), json!(text.text));
                }
                _ => {}
            }
            args(&mut m, list);
        }
        Args::Onbuild(trigger) => {
            m.insert("trigger".into(), dump_instruction(trigger));
        }
    }
    if !inst.heredocs.is_empty() {
        let docs = inst
            .heredocs
            .iter()
            .map(|h| {
                let mut d = Map::new();
                d.insert("name".into(), json!(h.name));
                d.insert("body".into(), json!(h.body));
                d.insert("strip_tabs".into(), json!(h.strip_tabs));
                d.insert("expand".into(), json!(h.expand));
                if let Some(fd) = h.fd {
                    d.insert("fd".into(), json!(fd));
                }
                Value::Object(d)
            })
            .collect();
        m.insert("heredocs".into(), Value::Array(docs));
    }
    Value::Object(m)
}
