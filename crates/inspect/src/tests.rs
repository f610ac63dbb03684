//! Archives built in memory, in both layouts and every compression, with exactly known waste;
//! and damaged ones.

use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::text::{hex, normalize};
use super::*;

// ---------------------------------------------------------------- building layers

/// An entry of a layer tar.
#[derive(Debug, Clone)]
enum E {
    /// A regular file with this content.
    F(String, Vec<u8>),
    D(String),
    /// A hard link: path, target.
    H(String, String),
    /// A symlink: path, target.
    S(String, String),
    /// A raw (empty) file, for whiteouts: `a/.wh.b`, `a/.wh..wh..opq`.
    W(String),
}

/// Content that differs from path to path and size to size.
fn bytes(tag: &str, n: usize) -> Vec<u8> {
    let seed = Sha256::digest(tag.as_bytes());
    (0..n)
        .map(|i| seed[i % 32].wrapping_add((i / 32) as u8))
        .collect()
}

fn f(path: &str, n: usize) -> E {
    E::F(path.into(), bytes(path, n))
}
fn fc(path: &str, content: &[u8]) -> E {
    E::F(path.into(), content.to_vec())
}
fn d(path: &str) -> E {
    E::D(path.into())
}
fn h(path: &str, target: &str) -> E {
    E::H(path.into(), target.into())
}
fn s(path: &str, target: &str) -> E {
    E::S(path.into(), target.into())
}
fn w(path: &str) -> E {
    E::W(path.into())
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_mtime(1_700_000_000);
    header
}

fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::F(p, data) => {
                let mut hd = header(tar::EntryType::Regular, data.len() as u64);
                b.append_data(&mut hd, p, &data[..]).unwrap();
            }
            E::D(p) => {
                let mut hd = header(tar::EntryType::Directory, 0);
                b.append_data(&mut hd, p, std::io::empty()).unwrap();
            }
            E::H(p, t) => {
                let mut hd = header(tar::EntryType::Link, 0);
                b.append_link(&mut hd, p, t).unwrap();
            }
            E::S(p, t) => {
                let mut hd = header(tar::EntryType::Symlink, 0);
                b.append_link(&mut hd, p, t).unwrap();
            }
            E::W(p) => {
                let mut hd = header(tar::EntryType::Regular, 0);
                b.append_data(&mut hd, p, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn sha(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

// ---------------------------------------------------------------- building archives

/// An entry of the outer archive.
#[derive(Debug, Clone)]
enum O {
    F(String, Vec<u8>),
    S(String, String),
    D(String),
}

fn pack(entries: &[O]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            O::F(p, data) => {
                let mut hd = header(tar::EntryType::Regular, data.len() as u64);
                b.append_data(&mut hd, p, &data[..]).unwrap();
            }
            O::S(p, t) => {
                let mut hd = header(tar::EntryType::Symlink, 0);
                b.append_link(&mut hd, p, t).unwrap();
            }
            O::D(p) => {
                let mut hd = header(tar::EntryType::Directory, 0);
                b.append_data(&mut hd, p, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn default_history(n: usize) -> Vec<(String, bool)> {
    let mut history = Vec::new();
    for i in 0..n {
        history.push((format!("RUN step {i}"), false));
        history.push((format!("ENV STEP={i}"), true));
    }
    history
}

fn config_json(diff_ids: &[String], history: &[(String, bool)]) -> Vec<u8> {
    let history: Vec<Value> = history
        .iter()
        .map(|(by, empty)| {
            if *empty {
                json!({"created": "2024-01-01T00:00:00Z", "created_by": by, "empty_layer": true})
            } else {
                json!({"created": "2024-01-01T00:00:00Z", "created_by": by})
            }
        })
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

const TAG: &str = "example/app:1";

/// A legacy `docker save` archive (engine < 25) of plain layer tars, manifest last.
fn legacy(layers: &[Vec<u8>], history: &[(String, bool)]) -> Vec<O> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha(l)))
        .collect();
    let config = config_json(&diff_ids, history);
    let config_name = format!("{}.json", sha(&config));
    let mut out = Vec::new();
    let mut paths = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        out.push(O::D(format!("{id}/")));
        out.push(O::F(format!("{id}/VERSION"), b"1.0".to_vec()));
        out.push(O::F(format!("{id}/json"), br#"{"id":"x"}"#.to_vec()));
        out.push(O::F(format!("{id}/layer.tar"), layer.clone()));
        paths.push(format!("{id}/layer.tar"));
    }
    out.push(O::F(config_name.clone(), config));
    out.push(O::F(
        "repositories".into(),
        br#"{"example/app":{"1":"abc"}}"#.to_vec(),
    ));
    let manifest = json!([{"Config": config_name, "RepoTags": [TAG], "Layers": paths}]);
    out.push(O::F(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    out
}

#[derive(Debug, Clone, Copy, Default)]
struct OciOpts {
    /// index.json → nested index → manifest.
    nested: bool,
    /// An attestation manifest listed first in index.json.
    attestation: bool,
    /// Also write an engine-25 manifest.json.
    manifest_json: bool,
    /// Descriptors declare the wrong size.
    wrong_size: bool,
    /// A first platform whose manifest is not in the archive.
    missing_platform: bool,
    /// index.json first in the archive, blobs after.
    index_first: bool,
}

fn descriptor(media: &str, data: &[u8], wrong_size: bool) -> Value {
    let size = if wrong_size {
        data.len() as u64 + 7
    } else {
        data.len() as u64
    };
    json!({"mediaType": media, "digest": format!("sha256:{}", sha(data)), "size": size})
}

/// An OCI layout archive of layer blobs stored as given, over the uncompressed `tars`.
fn oci(blobs: &[Vec<u8>], tars: &[Vec<u8>], history: &[(String, bool)], opts: OciOpts) -> Vec<O> {
    let diff_ids: Vec<String> = tars.iter().map(|l| format!("sha256:{}", sha(l))).collect();
    let config = config_json(&diff_ids, history);
    let layers: Vec<Value> = blobs
        .iter()
        .map(|b| {
            descriptor(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                b,
                opts.wrong_size,
            )
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config, opts.wrong_size),
        "layers": layers,
    }))
    .unwrap();
    let mut docs: Vec<Vec<u8>> = vec![config.clone(), manifest.clone()];
    let mut platform_list = Vec::new();
    if opts.missing_platform {
        platform_list.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha(b"not here")),
            "size": 8,
            "platform": {"architecture": "arm64", "os": "linux"},
        }));
    }
    let mut manifest_desc = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
        opts.wrong_size,
    );
    manifest_desc["platform"] = json!({"architecture": "amd64", "os": "linux"});
    platform_list.push(manifest_desc);
    let mut top = Vec::new();
    if opts.attestation {
        let att = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", b"{}", false),
            "layers": [],
        }))
        .unwrap();
        let mut att_desc = descriptor("application/vnd.oci.image.manifest.v1+json", &att, false);
        att_desc["platform"] = json!({"architecture": "unknown", "os": "unknown"});
        att_desc["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
        docs.push(att);
        docs.push(b"{}".to_vec());
        top.push(att_desc);
    }
    if opts.nested {
        let nested = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": platform_list,
        }))
        .unwrap();
        let mut desc = descriptor(
            "application/vnd.oci.image.index.v1+json",
            &nested,
            opts.wrong_size,
        );
        desc["annotations"] = json!({"io.containerd.image.name": format!("docker.io/{TAG}")});
        docs.push(nested);
        top.push(desc);
    } else {
        for mut desc in platform_list {
            desc["annotations"] = json!({"io.containerd.image.name": format!("docker.io/{TAG}")});
            top.push(desc);
        }
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": top})).unwrap();

    let mut blob_entries = vec![O::D("blobs/".into()), O::D("blobs/sha256/".into())];
    for b in blobs.iter().chain(docs.iter()) {
        let path = format!("blobs/sha256/{}", sha(b));
        if !blob_entries
            .iter()
            .any(|e| matches!(e, O::F(p, _) if *p == path))
        {
            blob_entries.push(O::F(path, b.clone()));
        }
    }
    let mut head = vec![
        O::F(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        O::F("index.json".into(), index),
    ];
    if opts.manifest_json {
        let paths: Vec<String> = blobs
            .iter()
            .map(|b| format!("blobs/sha256/{}", sha(b)))
            .collect();
        let m = json!([{"Config": format!("blobs/sha256/{}", sha(&config)), "RepoTags": [TAG], "Layers": paths}]);
        head.push(O::F(
            "manifest.json".into(),
            serde_json::to_vec(&m).unwrap(),
        ));
    }
    if opts.index_first {
        head.extend(blob_entries);
        head
    } else {
        blob_entries.extend(head);
        blob_entries
    }
}

fn options() -> AnalyzeOptions {
    AnalyzeOptions {
        top_n: 100,
        verify: true,
        ..AnalyzeOptions::default()
    }
}

/// The archive in a file, for [`analyze_file`].
fn in_file(archive: &[u8]) -> std::fs::File {
    use std::io::{Seek, Write};
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(archive).unwrap();
    file.rewind().unwrap();
    file
}

/// The four ways to analyse an archive: streamed or from a file, verified or not.
fn four_ways(
    archive: &[u8],
    base: &AnalyzeOptions,
) -> Vec<(String, Result<Analysis, InspectError>)> {
    let file = in_file(archive);
    let mut out = Vec::new();
    for verify in [true, false] {
        let options = AnalyzeOptions {
            verify,
            ..base.clone()
        };
        out.push((
            format!("analyze verify={verify}"),
            analyze(archive, &options),
        ));
        out.push((
            format!("analyze_file verify={verify}"),
            analyze_file(&file, &options),
        ));
    }
    out
}

/// Whether an error is one that only a verifying read can see: a digest that does not match.
fn only_verified(e: &InspectError) -> bool {
    match e {
        InspectError::Digest { .. } => true,
        InspectError::Layer { message, .. } => message.contains("diff id"),
        _ => false,
    }
}

/// Analyse `archive` all four ways with `base`: the same analysis every way (a verifying read
/// the reference), and the same error every way except where only verifying can see it.
fn run_with(archive: &[u8], base: &AnalyzeOptions) -> Result<Analysis, InspectError> {
    let mut ways = four_ways(archive, base).into_iter();
    let (_, reference) = ways.next().unwrap();
    let shown = |r: &Result<Analysis, InspectError>| match r {
        Ok(a) => serde_json::to_string_pretty(a).unwrap(),
        Err(e) => format!("error: {e}"),
    };
    for (way, result) in ways {
        let verifying = way.ends_with("verify=true");
        match (&reference, &result) {
            // Without verifying, a corrupt blob may read as a tar or not at all.
            (Err(e), _) if !verifying && only_verified(e) => {}
            _ => assert_eq!(
                shown(&reference),
                shown(&result),
                "{way} differs from a verifying streamed read"
            ),
        }
    }
    reference
}

fn run(archive: &[u8]) -> Analysis {
    match run_with(archive, &options()) {
        Ok(a) => a,
        Err(e) => panic!("analysis failed: {e}"),
    }
}

fn run_err(archive: &[u8]) -> InspectError {
    match run_with(archive, &options()) {
        Ok(a) => panic!("expected an error, got {a:#?}"),
        Err(e) => e,
    }
}

/// The figures that must not depend on layout or compression.
fn figures(a: &Analysis) -> Value {
    let mut v = serde_json::to_value(a).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("layout");
    o.remove("image");
    for layer in o["layers"].as_array_mut().unwrap() {
        let l = layer.as_object_mut().unwrap();
        l.remove("blob");
        l.remove("compression");
        l.remove("blob_bytes");
    }
    v
}

/// Analyse layers in the legacy layout, and in the OCI layout gzip- and zstd-compressed;
/// check that all three agree; return the legacy analysis.
fn analyse(layers: &[Vec<E>]) -> Analysis {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| layer_tar(l)).collect();
    let history = default_history(tars.len());
    let plain = run(&pack(&legacy(&tars, &history)));
    let gz: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
    let zs: Vec<Vec<u8>> = tars.iter().map(|t| zstd(t)).collect();
    let from_gzip = run(&pack(&oci(&gz, &tars, &history, OciOpts::default())));
    let from_zstd = run(&pack(&oci(&zs, &tars, &history, OciOpts::default())));
    assert_eq!(figures(&plain), figures(&from_gzip));
    assert_eq!(figures(&plain), figures(&from_zstd));
    assert_eq!(plain.layout, Layout::Docker);
    assert_eq!(from_gzip.layout, Layout::Oci);
    assert!(
        from_gzip
            .layers
            .iter()
            .all(|l| l.compression == Compression::Gzip)
    );
    assert!(
        from_zstd
            .layers
            .iter()
            .all(|l| l.compression == Compression::Zstd)
    );
    for (layer, tar) in plain.layers.iter().zip(&tars) {
        assert_eq!(layer.digest, format!("sha256:{}", sha(tar)));
        assert_eq!(layer.tar_bytes, tar.len() as u64);
    }
    assert_eq!(plain.total_bytes, plain.visible_bytes + plain.wasted_bytes);
    assert_eq!(
        plain.wasted_bytes,
        plain.layers.iter().map(|l| l.wasted_bytes).sum::<u64>()
    );
    assert_eq!(
        plain.total_bytes,
        plain.layers.iter().map(|l| l.size_bytes).sum::<u64>()
    );
    plain
}

fn wasted(
    path: &str,
    bytes: u64,
    written_in: usize,
    removed_in: Option<usize>,
) -> (String, u64, usize, Option<usize>) {
    (path.to_string(), bytes, written_in, removed_in)
}

fn top(a: &Analysis) -> Vec<(String, u64, usize, Option<usize>)> {
    a.top_wasted
        .iter()
        .map(|w| (w.path.clone(), w.bytes, w.written_in, w.removed_in))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// ---------------------------------------------------------------- waste, exactly

#[test]
fn a_file_written_then_deleted_in_a_later_layer_is_wasted() {
    let a = analyse(&[
        vec![d("etc"), f("etc/keep", 300)],
        vec![d("tmp"), f("tmp/big", 1000)],
        vec![d("tmp"), w("tmp/.wh.big")],
    ]);
    assert_eq!(a.total_bytes, 1300);
    assert_eq!(a.visible_bytes, 300);
    assert_eq!(a.wasted_bytes, 1000);
    assert!(close(a.efficiency, 300.0 / 1300.0));
    assert_eq!(top(&a), vec![wasted("tmp/big", 1000, 1, Some(2))]);
    assert_eq!(a.layers[1].wasted_bytes, 1000);
    assert_eq!(a.layers[0].wasted_bytes, 0);
    let l2 = &a.layers[2];
    assert_eq!(
        (l2.whiteouts, l2.files_removed, l2.bytes_removed),
        (1, 1, 1000)
    );
    assert_eq!((l2.size_bytes, l2.empty), (0, false));
    assert_eq!(a.layers[1].files_added, 1);
    // dive: tmp/big seen twice (1000, then 0 for the whiteout of a file).
    assert_eq!(a.dive.wasted_bytes, 1000);
    assert!(close(a.dive.efficiency, 300.0 / 1300.0));
    assert_eq!(a.dive.user_size_bytes, 1000);
    assert!(close(a.dive.user_wasted_percent, 1.0));
}

#[test]
fn a_directory_tree_deleted_by_a_whiteout_on_the_directory_is_wasted() {
    let a = analyse(&[
        vec![f("keep", 50)],
        vec![
            d("d"),
            d("d/sub"),
            f("d/x", 100),
            f("d/sub/y", 200),
            s("d/link", "x"),
        ],
        vec![w(".wh.d")],
    ]);
    assert_eq!(a.wasted_bytes, 300);
    assert_eq!(a.visible_bytes, 50);
    assert_eq!(
        top(&a),
        vec![
            wasted("d/sub/y", 200, 1, Some(2)),
            wasted("d/x", 100, 1, Some(2))
        ]
    );
    let l2 = &a.layers[2];
    assert_eq!(
        (l2.whiteouts, l2.files_removed, l2.bytes_removed),
        (1, 3, 300)
    );
    assert_eq!(a.layers[1].symlinks, 1);
    // dive sees `d` once (as the whiteout, sized 300) and its files once: no waste at all.
    assert_eq!(a.dive.wasted_bytes, 0);
    assert!(close(a.dive.efficiency, 1.0));
}

#[test]
fn a_directory_replaced_through_an_opaque_whiteout_wastes_what_it_hid() {
    // The opaque marker comes last in the tar: it still applies before its siblings.
    let a = analyse(&[
        vec![d("o"), f("o/x", 400), f("o/y", 100), f("base", 10)],
        vec![
            d("o"),
            f("o/new", 30),
            E::F("o/x".into(), bytes("other x", 5)),
            w("o/.wh..wh..opq"),
        ],
    ]);
    assert_eq!(a.total_bytes, 545);
    assert_eq!(a.visible_bytes, 45);
    assert_eq!(a.wasted_bytes, 500);
    assert_eq!(
        top(&a),
        vec![
            wasted("o/x", 400, 0, Some(1)),
            wasted("o/y", 100, 0, Some(1))
        ]
    );
    let l1 = &a.layers[1];
    assert_eq!(l1.opaque_whiteouts, 1);
    assert_eq!(
        (
            l1.files_added,
            l1.files_modified,
            l1.files_removed,
            l1.bytes_removed
        ),
        (1, 1, 1, 100)
    );
    // dive drops the opaque marker: o/x is seen twice (400 + 5), o/y once.
    assert_eq!(a.dive.wasted_bytes, 405);
    assert!(close(a.dive.efficiency, 145.0 / 545.0));
    assert!(close(a.dive.user_wasted_percent, 405.0 / 35.0));
}

#[test]
fn a_root_level_opaque_whiteout_hides_everything_below() {
    let a = analyse(&[
        vec![f("a", 10), d("b"), f("b/c", 20)],
        vec![w(".wh..wh..opq"), f("z", 1)],
    ]);
    assert_eq!(a.wasted_bytes, 30);
    assert_eq!(a.visible_bytes, 1);
}

#[test]
fn a_file_overwritten_twice_wastes_its_first_two_copies() {
    let a = analyse(&[vec![f("w", 100)], vec![f("w", 200)], vec![f("w", 300)]]);
    assert_eq!(
        (a.total_bytes, a.visible_bytes, a.wasted_bytes),
        (600, 300, 300)
    );
    assert_eq!(
        top(&a),
        vec![wasted("w", 200, 1, Some(2)), wasted("w", 100, 0, Some(1))]
    );
    assert_eq!(
        a.layers
            .iter()
            .map(|l| l.files_modified)
            .collect::<Vec<_>>(),
        vec![0, 1, 1]
    );
    assert_eq!(
        a.layers.iter().map(|l| l.wasted_bytes).collect::<Vec<_>>(),
        vec![100, 200, 0]
    );
    // dive: one path, 600 cumulative, 100 smallest.
    assert_eq!(a.dive.wasted_bytes, 600);
    assert!(close(a.dive.efficiency, 100.0 / 600.0));
    assert!(close(a.dive.user_wasted_percent, 600.0 / 500.0));
}

#[test]
fn a_hard_link_is_stored_once_and_keeps_its_content_visible() {
    let one = analyse(&[vec![f("h1", 500), h("h2", "h1")]]);
    assert_eq!(
        (one.total_bytes, one.wasted_bytes, one.duplicate_bytes),
        (500, 0, 0)
    );
    assert_eq!(one.layers[0].size_bytes, 500);
    assert_eq!(one.layers[0].hard_links, 1);
    assert_eq!(one.layers[0].files_added, 2);

    // Deleting one name leaves the content visible through the other...
    let half = analyse(&[vec![f("h1", 500), h("h2", "h1")], vec![w(".wh.h1")]]);
    assert_eq!(half.wasted_bytes, 0);
    assert_eq!(half.layers[1].files_removed, 1);
    // ...deleting both wastes it, once.
    let both = analyse(&[
        vec![f("h1", 500), h("h2", "h1")],
        vec![w(".wh.h1")],
        vec![w(".wh.h2")],
    ]);
    assert_eq!(both.wasted_bytes, 500);
    assert_eq!(top(&both), vec![wasted("h1", 500, 0, Some(2))]);
}

#[test]
fn a_moved_file_wastes_its_first_copy() {
    let content = bytes("m", 600);
    // `RUN mv /m1 /m2`: one layer with the whiteout and the new name.
    let a = analyse(&[
        vec![fc("m1", &content)],
        vec![w(".wh.m1"), fc("m2", &content)],
    ]);
    assert_eq!(
        (a.total_bytes, a.wasted_bytes, a.duplicate_bytes),
        (1200, 600, 0)
    );
    assert_eq!(top(&a), vec![wasted("m1", 600, 0, Some(1))]);
    assert_eq!((a.layers[1].files_added, a.layers[1].files_removed), (1, 1));
    // Written at 0, deleted at 1, written again under a new name at 2.
    let a = analyse(&[
        vec![fc("m1", &content)],
        vec![w(".wh.m1")],
        vec![fc("m2", &content)],
    ]);
    assert_eq!(a.wasted_bytes, 600);
    assert_eq!(top(&a), vec![wasted("m1", 600, 0, Some(1))]);
    // dive matches by path: m1 (600 then 0) counts, m2 does not.
    assert_eq!(a.dive.wasted_bytes, 600);
}

#[test]
fn a_pip_cache_left_in_a_layer_and_removed_later_is_wasted() {
    let a = analyse(&[
        vec![d("usr"), d("usr/bin"), f("usr/bin/python", 1000)],
        vec![
            d("app"),
            f("app/main.py", 500),
            d("root"),
            d("root/.cache"),
            d("root/.cache/pip"),
            d("root/.cache/pip/http"),
            f("root/.cache/pip/http/a", 3000),
            f("root/.cache/pip/http/b", 4000),
            f("root/.cache/pip/selfcheck.json", 100),
        ],
        vec![d("root"), d("root/.cache"), w("root/.cache/.wh.pip")],
    ]);
    assert_eq!(a.wasted_bytes, 7100);
    assert_eq!(a.visible_bytes, 1500);
    assert_eq!(a.layers[1].wasted_bytes, 7100);
    let l2 = &a.layers[2];
    assert_eq!((l2.files_removed, l2.bytes_removed), (3, 7100));
    assert_eq!(
        top(&a)[0],
        wasted("root/.cache/pip/http/b", 4000, 1, Some(2))
    );
    assert!(a.top_wasted.iter().all(|w| w.removed_in == Some(2)));
}

#[test]
fn a_directory_replaced_by_a_file_hides_its_files() {
    let a = analyse(&[vec![d("x"), f("x/a", 70)], vec![f("x", 3)]]);
    assert_eq!(a.wasted_bytes, 70);
    assert_eq!(a.layers[1].files_removed, 1);
    // And a file replaced by a directory.
    let a = analyse(&[vec![f("y", 9)], vec![d("y"), f("y/b", 1)]]);
    assert_eq!(a.wasted_bytes, 9);
    assert_eq!(top(&a), vec![wasted("y", 9, 0, Some(1))]);
}

#[test]
fn dive_figures_for_a_simple_case_match_a_hand_count() {
    // layer 0: a 100, b 50; layer 1: a 120 (rewritten), c 10; layer 2: rm b.
    let a = analyse(&[
        vec![f("a", 100), f("b", 50)],
        vec![E::F("a".into(), bytes("a2", 120)), f("c", 10)],
        vec![w(".wh.b")],
    ]);
    // dive: a → 220 cumulative, 100 smallest; b → 50 then 0 (whiteout of a file); c → 10.
    // Σ smallest = 100 + 0 + 10 = 110; Σ cumulative = 220 + 50 + 10 = 280.
    assert!(close(a.dive.efficiency, 110.0 / 280.0));
    // Paths seen twice: a (220) and b (50).
    assert_eq!(a.dive.wasted_bytes, 270);
    assert_eq!(a.dive.user_size_bytes, 130);
    assert!(close(a.dive.user_wasted_percent, 270.0 / 130.0));
    assert_eq!(a.dive.explanation, DIVE_EXPLANATION);
    // Ours: the first a (100) and b (50) are wasted.
    assert_eq!(
        (a.total_bytes, a.visible_bytes, a.wasted_bytes),
        (280, 130, 150)
    );
    assert!(close(a.efficiency, 130.0 / 280.0));
}

#[test]
fn duplicate_content_at_different_paths_is_counted_apart_from_waste() {
    let same = bytes("same", 700);
    let a = analyse(&[
        vec![
            fc("x", &same),
            fc("y", &same),
            h("x2", "x"),
            f("other", 300),
        ],
        vec![fc("z", &same), fc("gone", &same)],
        vec![w(".wh.gone")],
    ]);
    // x, y, z visible with one content (x2 is x): two of them are duplicates.
    assert_eq!(a.duplicate_bytes, 1400);
    assert_eq!(a.wasted_bytes, 700);
}

#[test]
fn history_entries_pair_with_layers_skipping_empty_ones() {
    let tars = vec![
        layer_tar(&[f("a", 1)]),
        layer_tar(&[]),
        layer_tar(&[f("b", 2)]),
    ];
    let history: Vec<(String, bool)> = [
        ("ADD rootfs.tar /", false),
        ("ENV A=1", true),
        ("WORKDIR /app", false),
        ("CMD [\"x\"]", true),
        ("RUN make", false),
        ("LABEL a=b", true),
    ]
    .iter()
    .map(|(s, e)| (s.to_string(), *e))
    .collect();
    let a = run(&pack(&legacy(&tars, &history)));
    let created: Vec<Option<&str>> = a.layers.iter().map(|l| l.created_by.as_deref()).collect();
    assert_eq!(
        created,
        vec![
            Some("ADD rootfs.tar /"),
            Some("WORKDIR /app"),
            Some("RUN make")
        ]
    );
    assert!(a.layers[1].empty);
    assert!(!a.layers[0].empty);
    assert_eq!(a.image.as_deref(), Some(TAG));
    // Fewer history entries than layers: the rest have none.
    let a = run(&pack(&legacy(&tars, &history[..1])));
    assert_eq!(a.layers[2].created_by, None);
}

// ---------------------------------------------------------------- layouts and quirks

fn sample_layers() -> Vec<Vec<u8>> {
    vec![
        layer_tar(&[d("bin"), f("bin/sh", 2000), s("bin/bash", "sh")]),
        layer_tar(&[d("tmp"), f("tmp/t", 900)]),
        layer_tar(&[d("tmp"), w("tmp/.wh.t"), f("app", 40)]),
    ]
}

#[test]
fn every_oci_shape_gives_the_same_figures_as_the_legacy_layout() {
    let tars = sample_layers();
    let history = default_history(tars.len());
    let want = figures(&run(&pack(&legacy(&tars, &history))));
    let gz: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
    let shapes = [
        OciOpts {
            nested: true,
            attestation: true,
            ..OciOpts::default()
        },
        OciOpts {
            wrong_size: true,
            ..OciOpts::default()
        },
        OciOpts {
            missing_platform: true,
            nested: true,
            ..OciOpts::default()
        },
        OciOpts {
            missing_platform: true,
            ..OciOpts::default()
        },
        OciOpts {
            index_first: true,
            attestation: true,
            ..OciOpts::default()
        },
    ];
    for opts in shapes {
        let a = run(&pack(&oci(&gz, &tars, &history, opts)));
        assert_eq!(figures(&a), want, "{opts:?}");
        assert_eq!(a.layout, Layout::Oci);
        assert_eq!(a.image.as_deref(), Some(&*format!("docker.io/{TAG}")));
        assert_eq!(a.layers[2].created_by.as_deref(), Some("RUN step 2"));
    }
    // Engine 25: an OCI layout and a manifest.json; the manifest.json is used.
    let a = run(&pack(&oci(
        &tars,
        &tars,
        &history,
        OciOpts {
            manifest_json: true,
            ..OciOpts::default()
        },
    )));
    assert_eq!(a.layout, Layout::Docker);
    assert_eq!(a.image.as_deref(), Some(TAG));
    assert_eq!(figures(&a), want);
    assert!(a.layers[0].blob.starts_with("blobs/sha256/"));
}

#[test]
fn the_order_of_the_archive_entries_does_not_matter() {
    let tars = sample_layers();
    let history = default_history(tars.len());
    let entries = legacy(&tars, &history);
    let want = figures(&run(&pack(&entries)));
    let mut reversed = entries.clone();
    reversed.reverse();
    // A directory entry after its files is fine in a tar.
    assert_eq!(figures(&run(&pack(&reversed))), want);
    let mut rotated = entries;
    rotated.rotate_left(5);
    assert_eq!(figures(&run(&pack(&rotated))), want);
}

#[test]
fn a_repeated_legacy_layer_stored_as_a_symlink_is_followed() {
    let tars = vec![
        layer_tar(&[f("a", 10)]),
        layer_tar(&[f("b", 20)]),
        layer_tar(&[f("a", 10)]),
    ];
    let history = default_history(3);
    let mut entries = legacy(&tars, &history);
    let third = format!("{:064x}/layer.tar", 3);
    let first = format!("../{:064x}/layer.tar", 1);
    for e in &mut entries {
        if matches!(e, O::F(p, _) if *p == third) {
            *e = O::S(third.clone(), first.clone());
        }
    }
    let a = run(&pack(&entries));
    assert_eq!(a.layers.len(), 3);
    assert_eq!(a.layers[2].digest, a.layers[0].digest);
    assert_eq!(a.layers[2].size_bytes, 10);
    // The same content applied twice: the lower copy is overwritten.
    assert_eq!(a.wasted_bytes, 10);
}

#[test]
fn zstd_layers_of_several_frames_and_skippable_frames_are_read() {
    let tars = sample_layers();
    let history = default_history(tars.len());
    let want = figures(&run(&pack(&legacy(&tars, &history))));
    let framed: Vec<Vec<u8>> = tars
        .iter()
        .map(|t| {
            let (a, b) = t.split_at(t.len() / 3);
            let mut out = zstd(a);
            out.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
            out.extend(zstd(b));
            out
        })
        .collect();
    let a = run(&pack(&oci(&framed, &tars, &history, OciOpts::default())));
    assert_eq!(figures(&a), want);
    // A known-good frame made by the reference zstd CLI (`printf 'hello\n' | zstd -c`), with
    // its checksum; and the same with the checksum broken.
    let frame: &[u8] = &[
        0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x31, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
        0x53, 0x88, 0xbd, 0x91,
    ];
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut layer::zstd_reader(frame), &mut out).unwrap();
    assert_eq!(out, b"hello\n");
    let mut broken = frame.to_vec();
    broken[16] ^= 1;
    let mut out = Vec::new();
    let e = std::io::Read::read_to_end(&mut layer::zstd_reader(&broken[..]), &mut out).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
}

/// A layer tar (`etc/motd`, 480 bytes, and `etc/.wh.old`) written by Python's tarfile and
/// compressed by the zstd CLI at level 19: compressed blocks and a checksum.
const CLI_ZSTD_LAYER: &[u8] = &[
    0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x00, 0x27, 0x35, 0x03, 0x00, 0x82, 0x04, 0x0f, 0x11, 0xb0, 0x3d,
    0x6c, 0x0d, 0x64, 0xac, 0x82, 0x93, 0x49, 0x88, 0x20, 0xc4, 0x51, 0x9f, 0x5d, 0xe0, 0x52, 0xc3,
    0x4b, 0x7a, 0x17, 0xd8, 0x0c, 0x0b, 0x9e, 0xa2, 0xe7, 0x39, 0x45, 0x58, 0xf9, 0x70, 0x73, 0x6f,
    0xb1, 0xfb, 0x57, 0x6c, 0x99, 0xdf, 0x89, 0x50, 0xee, 0x36, 0xaf, 0x71, 0x62, 0xb6, 0xdd, 0x74,
    0xaf, 0x7b, 0xe9, 0x4d, 0xd1, 0x35, 0x81, 0xa2, 0x0a, 0x10, 0x20, 0x50, 0xb7, 0xd6, 0x0d, 0xfd,
    0x81, 0x07, 0x63, 0xd4, 0x81, 0x60, 0x03, 0xaf, 0xd2, 0x06, 0x70, 0x05, 0x35, 0x97, 0x62, 0xd5,
    0x41, 0x97, 0x8a, 0x1f, 0xa7, 0xec, 0xae, 0xac, 0x07, 0xd9, 0x83, 0x02, 0x0c, 0x27, 0x2e, 0x07,
    0xad, 0xde, 0x13, 0xef,
];

#[test]
fn a_layer_compressed_by_the_zstd_cli_is_read() {
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut layer::zstd_reader(CLI_ZSTD_LAYER), &mut tar).unwrap();
    assert_eq!(
        sha(&tar),
        "516369db5ae6a7907dfa4511fa2babe737e033739defbadb1d91017d00284b59"
    );
    let base = layer_tar(&[d("etc"), f("etc/old", 64)]);
    let blobs = vec![gzip(&base), CLI_ZSTD_LAYER.to_vec()];
    let a = run(&pack(&oci(
        &blobs,
        &[base, tar],
        &default_history(2),
        OciOpts::default(),
    )));
    let l1 = &a.layers[1];
    assert_eq!(l1.compression, Compression::Zstd);
    assert_eq!(
        (l1.size_bytes, l1.tar_bytes, l1.blob_bytes),
        (480, 10240, 116)
    );
    assert_eq!(
        l1.digest,
        "sha256:516369db5ae6a7907dfa4511fa2babe737e033739defbadb1d91017d00284b59"
    );
    assert_eq!((l1.whiteouts, l1.files_removed, l1.files_added), (1, 1, 1));
    assert_eq!(a.wasted_bytes, 64);
}

#[test]
fn a_manifest_with_no_layers_is_an_empty_image() {
    let history = default_history(0);
    let config = config_json(&[], &history);
    for layers in [json!([]), Value::Null] {
        let mut manifest = json!({"schemaVersion": 2, "config": {"mediaType": "x", "digest": format!("sha256:{}", sha(&config)), "size": 1}});
        if !layers.is_null() {
            manifest["layers"] = layers;
        }
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let index = serde_json::to_vec(
            &json!({"manifests": [{"digest": format!("sha256:{}", sha(&manifest)), "size": 3}]}),
        )
        .unwrap();
        let a = run(&pack(&[
            O::F(format!("blobs/sha256/{}", sha(&config)), config.clone()),
            O::F(format!("blobs/sha256/{}", sha(&manifest)), manifest),
            O::F("index.json".into(), index),
        ]));
        assert!(a.layers.is_empty());
        assert_eq!((a.total_bytes, a.wasted_bytes), (0, 0));
        assert!(close(a.efficiency, 1.0));
        assert!(close(a.dive.efficiency, 1.0));
        assert!(
            a.dive.user_wasted_percent.is_nan(),
            "nothing over nothing, as dive divides"
        );
    }
}

#[test]
fn manifests_null_is_tolerated_when_manifest_json_is_there() {
    let tars = sample_layers();
    let history = default_history(tars.len());
    let mut entries = oci(
        &tars,
        &tars,
        &history,
        OciOpts {
            manifest_json: true,
            ..OciOpts::default()
        },
    );
    for e in &mut entries {
        if let O::F(p, data) = e {
            if p == "index.json" {
                *data = br#"{"schemaVersion":2,"manifests":null}"#.to_vec();
            }
        }
    }
    assert_eq!(run(&pack(&entries)).layers.len(), 3);
    // Without manifest.json, there is no image.
    entries.retain(|e| !matches!(e, O::F(p, _) if p == "manifest.json"));
    let e = run_err(&pack(&entries));
    assert!(
        e.to_string().starts_with("index.json: no image manifest"),
        "{e}"
    );
}

#[test]
fn an_image_is_picked_by_name() {
    let one = layer_tar(&[f("one", 1)]);
    let two = layer_tar(&[f("two", 22)]);
    let h = default_history(1);
    let mut entries = legacy(std::slice::from_ref(&one), &h);
    let second = legacy(std::slice::from_ref(&two), &h);
    let first_manifest: Value = match entries.last() {
        Some(O::F(_, m)) => serde_json::from_slice(m).unwrap(),
        _ => unreachable!(),
    };
    let mut second_manifest: Value = match second.last() {
        Some(O::F(_, m)) => serde_json::from_slice(m).unwrap(),
        _ => unreachable!(),
    };
    // Give the second image its own layer directory and name.
    let id2 = format!("{:064x}", 99);
    second_manifest[0]["Layers"] = json!([format!("{id2}/layer.tar")]);
    second_manifest[0]["RepoTags"] = json!(["other:2"]);
    entries.pop();
    for e in &second[..second.len() - 1] {
        if let O::F(p, data) = e {
            if p.ends_with(".json") && !p.contains('/') {
                entries.push(e.clone());
            } else if p.ends_with("layer.tar") {
                entries.push(O::F(format!("{id2}/layer.tar"), data.clone()));
            }
        }
    }
    let both = json!([first_manifest[0], second_manifest[0]]);
    entries.push(O::F(
        "manifest.json".into(),
        serde_json::to_vec(&both).unwrap(),
    ));
    let archive = pack(&entries);
    assert_eq!(run(&archive).total_bytes, 1);
    let pick = |name: &str| {
        run_with(
            &archive,
            &AnalyzeOptions {
                top_n: 5,
                image: Some(name.into()),
                ..AnalyzeOptions::default()
            },
        )
    };
    let a = pick("other:2").unwrap();
    assert_eq!((a.total_bytes, a.image.as_deref()), (22, Some("other:2")));
    let a = pick("docker.io/library/other:2").unwrap();
    assert_eq!(a.total_bytes, 22);
    let e = pick("nope:1").unwrap_err();
    assert_eq!(e.to_string(), "no image named nope:1 in the archive");
}

#[test]
fn top_n_limits_the_list() {
    let a = analyse(&[
        vec![f("a", 1), f("b", 2), f("c", 3)],
        vec![w(".wh.a"), w(".wh.b"), w(".wh.c")],
    ]);
    assert_eq!(a.top_wasted.len(), 3);
    let tars: Vec<Vec<u8>> = [
        vec![f("a", 1), f("b", 2), f("c", 3)],
        vec![w(".wh.a"), w(".wh.b"), w(".wh.c")],
    ]
    .iter()
    .map(|l| layer_tar(l))
    .collect();
    let archive = pack(&legacy(&tars, &default_history(2)));
    let a = run_with(
        &archive,
        &AnalyzeOptions {
            top_n: 2,
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        top(&a),
        vec![wasted("c", 3, 0, Some(1)), wasted("b", 2, 0, Some(1))]
    );
    assert_eq!(AnalyzeOptions::default().top_n, 10);
}

#[test]
fn the_json_shape_has_the_fields_the_consumers_read() {
    let a = analyse(&[vec![f("a", 5)], vec![w(".wh.a")]]);
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "total_bytes",
        "wasted_bytes",
        "efficiency",
        "top_wasted",
        "layers",
        "dive",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    for key in [
        "index",
        "digest",
        "size_bytes",
        "created_by",
        "wasted_bytes",
    ] {
        assert!(v["layers"][0].get(key).is_some(), "{key}");
    }
    assert_eq!(
        v["top_wasted"][0],
        json!({"path": "a", "bytes": 5, "written_in": 0, "removed_in": 1})
    );
}

// ---------------------------------------------------------------- damaged input

#[test]
fn empty_input_and_garbage_are_errors() {
    let e = run_err(b"");
    assert_eq!(e.to_string(), "not an image archive: the input is empty");
    let e = run_err(b"this is not a tar archive at all, just words");
    assert!(e.to_string().starts_with("not an image archive"), "{e}");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in [1usize, 100, 511, 512, 513, 1024, 5000] {
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert!(analyze(&noise[..], &options()).is_err());
    }
    assert!(analyze(&[0u8; 4096][..], &options()).is_err());
}

#[test]
fn an_archive_without_either_top_document_is_not_an_image() {
    let e = run_err(&pack(&[O::F("hello.txt".into(), b"hi".to_vec())]));
    assert_eq!(
        e.to_string(),
        "not an image archive: no manifest.json or index.json"
    );
}

#[test]
fn malformed_documents_are_named() {
    let e = run_err(&pack(&[O::F(
        "manifest.json".into(),
        br#"{"a":1}"#.to_vec(),
    )]));
    assert_eq!(e.to_string(), "manifest.json: expected a list");
    let e = run_err(&pack(&[O::F(
        "manifest.json".into(),
        b"[{\"Config\": ".to_vec(),
    )]));
    assert!(
        e.to_string()
            .starts_with("manifest.json: EOF while parsing"),
        "{e}"
    );
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = run_err(&pack(&[O::F(
        "manifest.json".into(),
        br#"[{"Layers": []}]"#.to_vec(),
    )]));
    assert!(e.to_string().contains("\"Config\" is missing"), "{e}");
    let e = run_err(&pack(&[O::F(
        "manifest.json".into(),
        br#"[{"Config": "c.json", "Layers": ["x/layer.tar"]}]"#.to_vec(),
    )]));
    assert_eq!(
        e.to_string(),
        "manifest.json refers to c.json, which is not in the archive"
    );
}

#[test]
fn a_missing_layer_is_named() {
    let tars = sample_layers();
    let mut entries = legacy(&tars, &default_history(3));
    let gone = format!("{:064x}/layer.tar", 2);
    entries.retain(|e| !matches!(e, O::F(p, _) if *p == gone));
    let e = run_err(&pack(&entries));
    assert_eq!(
        e.to_string(),
        format!(
            "manifest.json refers to {:012x}…/layer.tar, which is not in the archive",
            0
        )
    );
}

/// An OCI archive whose one layer blob is `blob` (named by its own digest, so that only the
/// layer's content is wrong).
fn oci_with_blob(blob: Vec<u8>, tar: &[u8]) -> (Vec<u8>, String) {
    let name = format!("blobs/sha256/{}", sha(&blob));
    let entries = oci(
        &[blob],
        &[tar.to_vec()],
        &default_history(1),
        OciOpts::default(),
    );
    (pack(&entries), name)
}

#[test]
fn damaged_compressed_layers_are_named() {
    let tar = layer_tar(&[f("big", 20_000), f("small", 10)]);
    let gz = gzip(&tar);
    let (archive, name) = oci_with_blob(gz[..gz.len() / 2].to_vec(), &tar);
    let e = run_err(&archive);
    let short_name = format!(
        "blobs/sha256/{}…",
        &name["blobs/sha256/".len()..]["".len()..12]
    );
    assert_eq!(
        e.to_string(),
        format!(
            "layer {short_name}: truncated gzip stream (layer 0 of the image, from the bottom)"
        )
    );
    // Cut inside the gzip trailer.
    let (archive, _) = oci_with_blob(gz[..gz.len() - 3].to_vec(), &tar);
    assert!(
        run_err(&archive)
            .to_string()
            .contains("truncated gzip stream (layer 0")
    );
    // A flipped byte in the deflate data.
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    let (archive, _) = oci_with_blob(bad, &tar);
    let e = run_err(&archive).to_string();
    assert!(e.contains("gzip stream") || e.contains("diff id"), "{e}");

    let zs = zstd(&tar);
    let (archive, _) = oci_with_blob(zs[..zs.len() / 2].to_vec(), &tar);
    assert!(
        run_err(&archive)
            .to_string()
            .contains("truncated zstd stream (layer 0")
    );
    let (archive, _) = oci_with_blob(zs[..4].to_vec(), &tar);
    assert!(run_err(&archive).to_string().contains("zstd stream"));

    // A plain tar cut short inside a file.
    let (archive, _) = oci_with_blob(tar[..3000].to_vec(), &tar);
    let e = run_err(&archive).to_string();
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn content_that_does_not_match_its_digest_is_an_error() {
    let tars = sample_layers();
    let history = default_history(3);
    // Legacy: a flipped byte in a file of a plain layer: the diff id no longer matches.
    let mut entries = legacy(&tars, &history);
    let target = format!("{:064x}/layer.tar", 1);
    for e in &mut entries {
        if let O::F(p, data) = e {
            if *p == target {
                data[1500] ^= 1;
            }
        }
    }
    let e = run_err(&pack(&entries)).to_string();
    assert!(e.contains("diff id"), "{e}");
    // OCI: a blob whose content is not its name.
    let mut entries = oci(&tars, &tars, &history, OciOpts::default());
    for e in &mut entries {
        if let O::F(p, data) = e {
            if p.starts_with("blobs/") && data.len() > 1000 {
                data[700] ^= 1;
                break;
            }
        }
    }
    let e = run_err(&pack(&entries)).to_string();
    assert!(e.contains("not the digest it is named by"), "{e}");
}

#[test]
fn huge_declared_sizes_are_errors_not_allocations() {
    // An outer entry declaring a terabyte, holding a few bytes.
    let mut hd = header(tar::EntryType::Regular, 1 << 40);
    hd.set_path("blobs/sha256/00").unwrap();
    hd.set_cksum();
    let mut archive = hd.as_bytes().to_vec();
    archive.extend(layer_tar(&[f("x", 100)]));
    assert!(analyze(&archive[..], &options()).is_err());
    // A manifest.json declaring a terabyte.
    let mut hd = header(tar::EntryType::Regular, 1 << 40);
    hd.set_path("manifest.json").unwrap();
    hd.set_cksum();
    let mut archive = hd.as_bytes().to_vec();
    archive.extend_from_slice(b"[]");
    archive.resize(archive.len() + 2048, 0);
    let e = run_err(&archive);
    assert!(e.to_string().contains("too large"), "{e}");
    // A layer entry declaring a terabyte inside a complete gzip blob.
    let mut inner = {
        let mut hd = header(tar::EntryType::Regular, 1 << 40);
        hd.set_path("huge").unwrap();
        hd.set_cksum();
        hd.as_bytes().to_vec()
    };
    inner.extend_from_slice(&[7u8; 1000]);
    let (archive, _) = oci_with_blob(gzip(&inner), &inner);
    assert!(run_err(&archive).to_string().contains("truncated"));
}

/// Every cut of the archive short of its end-of-archive marker is an error; a cut after the
/// marker's first block reads the same as the whole.
fn every_truncation_is_an_error(archive: &[u8]) {
    let whole = figures(&run(archive));
    // `tar::Builder` ends with two zero blocks; the first one marks the end.
    let marker_end = archive.len() - 512;
    for cut in 0..archive.len() {
        for (way, result) in four_ways(&archive[..cut], &options()) {
            match result {
                Ok(a) => {
                    assert!(
                        cut >= marker_end,
                        "{way}: a cut at {cut} of {} was accepted",
                        archive.len()
                    );
                    assert_eq!(figures(&a), whole, "{way}");
                }
                Err(e) => assert!(cut < marker_end, "{way}: a cut at {cut} failed: {e}"),
            }
        }
    }
}

#[test]
fn every_truncation_of_a_valid_archive_is_an_error() {
    let tars = vec![
        layer_tar(&[d("t"), f("t/a", 700), h("t/b", "t/a")]),
        layer_tar(&[w("t/.wh.a"), f("c", 300)]),
    ];
    let history = default_history(2);
    every_truncation_is_an_error(&pack(&legacy(&tars, &history)));
    let gz: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
    every_truncation_is_an_error(&pack(&oci(&gz, &tars, &history, OciOpts::default())));
    let zs: Vec<Vec<u8>> = tars.iter().map(|t| zstd(t)).collect();
    every_truncation_is_an_error(&pack(&oci(
        &zs,
        &tars,
        &history,
        OciOpts {
            index_first: true,
            ..OciOpts::default()
        },
    )));
}

/// A flipped byte anywhere is an error, or changes nothing that is reported from content.
fn every_flip_is_caught_or_harmless(archive: &[u8]) {
    let whole = figures(&run(archive));
    let mut caught = 0usize;
    for at in 0..archive.len() {
        let mut bad = archive.to_vec();
        bad[at] ^= 0xff;
        let streamed = analyze(&bad[..], &options());
        let from_file = analyze_file(&in_file(&bad), &options());
        assert_eq!(
            streamed.as_ref().map(figures).map_err(ToString::to_string),
            from_file.as_ref().map(figures).map_err(ToString::to_string),
            "a flip at {at}: a verifying read of the file differs from the stream's"
        );
        match streamed {
            Err(_) => caught += 1,
            Ok(a) => {
                let mut got = figures(&a);
                let mut want = whole.clone();
                // Names and history are free text: a flip there is not detectable.
                for v in [&mut got, &mut want] {
                    for layer in v["layers"].as_array_mut().unwrap() {
                        layer.as_object_mut().unwrap().remove("created_by");
                    }
                }
                assert_eq!(got, want, "a flip at {at} changed the figures");
            }
        }
    }
    assert!(caught > archive.len() / 2, "{caught} of {}", archive.len());
}

#[test]
fn flipped_bytes_never_panic_and_never_change_the_figures_silently() {
    let tars = vec![
        layer_tar(&[d("t"), f("t/a", 300), s("t/s", "a")]),
        layer_tar(&[w("t/.wh.a"), f("c", 200)]),
    ];
    let history = default_history(2);
    every_flip_is_caught_or_harmless(&pack(&legacy(&tars, &history)));
    let gz: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
    every_flip_is_caught_or_harmless(&pack(&oci(&gz, &tars, &history, OciOpts::default())));
    let zs: Vec<Vec<u8>> = tars.iter().map(|t| zstd(t)).collect();
    every_flip_is_caught_or_harmless(&pack(&oci(&zs, &tars, &history, OciOpts::default())));
}

#[test]
fn bytes_after_the_end_of_the_archive_are_not_read() {
    let tars = sample_layers();
    let mut archive = pack(&legacy(&tars, &default_history(3)));
    let want = figures(&run(&archive));
    archive.extend_from_slice(b"trailing garbage that nobody reads");
    assert_eq!(figures(&run(&archive)), want);
}

#[test]
fn a_failing_reader_is_reported_as_such() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(0);
            self.0 -= n;
            Ok(n)
        }
    }
    let e = analyze(Failing(100), &options()).unwrap_err();
    assert!(matches!(e, InspectError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("disk on fire"), "{e}");
}

#[test]
fn paths_are_made_canonical_and_digests_short() {
    assert_eq!(normalize("./a//b/./c/"), "a/b/c");
    assert_eq!(normalize("/../../x/../y"), "y");
    assert_eq!(normalize("./"), "");
    let hex64 = "ab".repeat(32);
    assert_eq!(
        short(&format!("blobs/sha256/{hex64}")),
        "blobs/sha256/abababababab…"
    );
    assert_eq!(short(&format!("sha256:{hex64}")), "sha256:abababababab…");
    assert_eq!(short("manifest.json"), "manifest.json");
    assert_eq!(short("é/ü"), "é/ü");
}

#[test]
fn trailing_zeros_after_a_compressed_layer_are_padding() {
    let tars = sample_layers();
    let history = default_history(tars.len());
    let want = figures(&run(&pack(&legacy(&tars, &history))));
    for compress in [gzip as fn(&[u8]) -> Vec<u8>, zstd] {
        let padded: Vec<Vec<u8>> = tars
            .iter()
            .map(|t| {
                let mut out = compress(t);
                out.extend_from_slice(&[0u8; 1024]);
                out
            })
            .collect();
        let a = run(&pack(&oci(&padded, &tars, &history, OciOpts::default())));
        assert_eq!(figures(&a), want);
        // Anything but zeros after the stream is still refused.
        let mut bad = padded.clone();
        bad[0].extend_from_slice(b"junk");
        let e = run_err(&pack(&oci(&bad, &tars, &history, OciOpts::default())));
        assert!(e.to_string().contains("zero padding"), "{e}");
    }
}

#[test]
fn an_empty_layer_blob_is_an_empty_layer() {
    let tars = vec![
        layer_tar(&[f("a", 100)]),
        Vec::new(),
        layer_tar(&[f("b", 50)]),
    ];
    let history = default_history(tars.len());
    for archive in [
        pack(&legacy(&tars, &history)),
        pack(&oci(&tars, &tars, &history, OciOpts::default())),
    ] {
        let a = run(&archive);
        assert_eq!(a.layers.len(), 3);
        assert_eq!(a.layers[1].size_bytes, 0);
        assert_eq!(a.total_bytes, 150);
    }
}

#[test]
fn a_dot_dot_entry_is_refused_with_its_layer_and_path() {
    for path in ["../etc/passwd", "a/../../b", "a/b/.."] {
        // tar::Builder refuses such names: write the header's name field directly.
        let mut b = tar::Builder::new(Vec::new());
        let mut hd = header(tar::EntryType::Regular, 1);
        hd.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        hd.set_cksum();
        b.append(&hd, &b"x"[..]).unwrap();
        let tars = vec![layer_tar(&[f("a/x", 10)]), b.into_inner().unwrap()];
        let history = default_history(tars.len());
        let e = run_err(&pack(&legacy(&tars, &history))).to_string();
        assert!(
            e.contains("(layer 1 of the image") && e.contains(path) && e.contains("`..`"),
            "{path}: {e}"
        );
    }
    // `..` inside a name is a name.
    let tars = vec![layer_tar(&[f("a..b/x", 10), f("..c", 5)])];
    let a = run(&pack(&legacy(&tars, &default_history(1))));
    assert_eq!(a.total_bytes, 15);
}
