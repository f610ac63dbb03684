//! Network bridges for throwaway engines.
//!
//! A throwaway engine must never run with `bridge: none`: dockerd then deletes docker0, the
//! main engine's bridge, and every later build on it loses its network. So each gets a
//! bridge of its own, with an address in a /24 that no route on this machine covers.

use anyhow::{Result, bail};

use crate::sh::cmd;

/// A bridge with an address; removed on drop.
#[derive(Debug)]
pub struct Bridge {
    pub name: String,
    /// Its address with the prefix length: `10.214.100.1/24`.
    pub cidr: String,
}

impl Bridge {
    /// The bridge `name`, on the first `10.SECOND.THIRD.0/24` (`THIRD` drawn from `thirds`, in
    /// order) that no route covers yet.
    pub fn create(name: &str, second: u8, thirds: impl IntoIterator<Item = u8>) -> Result<Bridge> {
        cmd("ip", ["link", "add", name, "type", "bridge"]).read()?;
        // From here on, dropping it removes the link again.
        let mut bridge = Bridge {
            name: name.to_string(),
            cidr: String::new(),
        };
        let routes = cmd("ip", ["-4", "route", "show"]).read()?;
        let Some(third) = thirds
            .into_iter()
            .find(|t| !routes.contains(&format!("10.{second}.{t}.")))
        else {
            bail!("no free subnet for the bridge {name} among 10.{second}.x.0/24");
        };
        bridge.cidr = format!("10.{second}.{third}.1/24");
        cmd("ip", ["addr", "add", &bridge.cidr, "dev", name]).read()?;
        cmd("ip", ["link", "set", name, "up"]).read()?;
        Ok(bridge)
    }

    /// The network it is on: `10.214.100.0/24`.
    pub fn network(&self) -> String {
        network_of(&self.cidr)
    }

    /// Remove the bridge `name` if there is one (what a killed run left).
    pub fn remove(name: &str) -> Result<()> {
        if std::path::Path::new("/sys/class/net").join(name).exists() {
            cmd("ip", ["link", "del", name]).read()?;
        }
        Ok(())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Bridge::remove(&self.name);
    }
}

fn network_of(cidr: &str) -> String {
    let (ip, bits) = cidr.split_once('/').unwrap_or((cidr, "32"));
    match ip.rsplit_once('.') {
        Some((net, _)) => format!("{net}.0/{bits}"),
        None => cidr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_of_an_address() {
        assert_eq!(network_of("10.214.100.1/24"), "10.214.100.0/24");
    }
}
