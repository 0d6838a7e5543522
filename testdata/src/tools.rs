//! Real third-party programs for integration tests (Prometheus, Alertmanager), found on PATH
//! or installed from Debian's packages when missing and possible.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn on_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
}

fn apt_install(package: &str) -> Result<(), String> {
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    if run(&install) || (run(&["update"]) && run(&install)) {
        Ok(())
    } else {
        Err(format!("`apt-get install {package}` failed"))
    }
}

/// The path of `binary`, installing Debian's `package` first when it is missing and this
/// process may install packages (root with apt-get). `Err` says why it is unavailable, for the
/// calling test to print as its reason for skipping.
pub fn debian_tool(binary: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(p) = on_path(binary) {
        return Ok(p);
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root || on_path("apt-get").is_none() {
        return Err(format!(
            "{binary} is not installed and this user cannot install it; run: sudo apt-get install {package}"
        ));
    }
    eprintln!("installing Debian package {package} for an integration test ...");
    apt_install(package)?;
    on_path(binary).ok_or_else(|| format!("{package} installed but {binary} is not on PATH"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}
