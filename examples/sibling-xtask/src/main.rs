//! A sibling repository's image job with headroom's crates: free disk to a target, build,
//! push. Deletes only on a GitHub-hosted runner (headroom's own rule, from headroom-pipeline);
//! elsewhere it reports what it would free.

use headroom_docker::build::BuildSpec;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hosted = headroom_pipeline::Runner::detect().may_delete_unasked();
    let data_root = headroom_disk::docker_data_root().unwrap_or_else(|_| "/".into());
    let spec = BuildSpec {
        context: "docker".into(),
        dockerfile: "docker/Dockerfile".into(),
        image: "ghcr.io/acme/trainer".into(),
        ..BuildSpec::default()
    };

    let freed = headroom_disk::free_until(&data_root, 25_000_000_000, !hosted)?;
    let pushed = headroom_docker::build_and_push(&spec).await?;

    let size = headroom_disk::format_size(freed.freed_bytes);
    println!("freed {size} (target met: {})", freed.target_met);
    for p in pushed {
        println!("pushed {} {}", p.reference, p.digest);
    }
    Ok(())
}
