//! Streams ARM resources into `arm/<subscription>/<type>.json` list pages of at most
//! [`CHUNK`] items, and counts what it wrote for the network usages rows.
//!
//! Each item is serialised and written as soon as it is pushed, so a world with 100,000 extra
//! resources never sits in memory. Files appear atomically (written under a temporary name,
//! renamed when complete). It decides nothing about content.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Items per file by default: big types are split so no file holds more than this many resources.
pub const CHUNK: usize = 5000;

struct ChunkWriter {
    dir: PathBuf,
    limit: usize,
    stem: &'static str,
    chunk_no: usize,
    in_chunk: usize,
    open: Option<(BufWriter<File>, PathBuf, PathBuf)>,
}

impl ChunkWriter {
    fn push(&mut self, v: &Value) -> io::Result<()> {
        if self.in_chunk == self.limit {
            self.close()?;
        }
        if self.open.is_none() {
            self.chunk_no += 1;
            self.in_chunk = 0;
            let name = if self.chunk_no == 1 {
                format!("{}.json", self.stem)
            } else {
                format!("{}-{}.json", self.stem, self.chunk_no)
            };
            fs::create_dir_all(&self.dir)?;
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let mut w = BufWriter::new(File::create(&tmp)?);
            w.write_all(b"{\"value\": [\n")?;
            self.open = Some((w, tmp, self.dir.join(name)));
        }
        let (w, _, _) = self.open.as_mut().expect("opened above");
        if self.in_chunk > 0 {
            w.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut *w, v)?;
        self.in_chunk += 1;
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some((mut w, tmp, path)) = self.open.take() {
            w.write_all(b"\n]}\n")?;
            w.flush()?;
            drop(w);
            fs::rename(tmp, path)?;
        }
        Ok(())
    }
}

/// Counts per `(subscription, location)` of the region-wide usage rows.
pub type UsageCounts = BTreeMap<(String, String), BTreeMap<&'static str, u64>>;

/// Where ARM resources go.
pub struct Sink {
    arm_root: PathBuf,
    chunk: usize,
    writers: BTreeMap<(String, &'static str), ChunkWriter>,
    pub usage: UsageCounts,
}

impl Sink {
    /// Files of at most `chunk` items under `root/arm/`.
    pub fn new(root: &Path, chunk: usize) -> Sink {
        Sink {
            arm_root: root.join("arm"),
            chunk: chunk.max(1),
            writers: BTreeMap::new(),
            usage: BTreeMap::new(),
        }
    }

    /// Writes one resource to `arm/<sub>/<stem>.json` (or its next chunk) and counts it.
    pub fn push(&mut self, sub: &str, stem: &'static str, location: &str, v: &Value) -> io::Result<()> {
        self.count(sub, stem, location, v);
        let (arm_root, limit) = (&self.arm_root, self.chunk);
        let w = self
            .writers
            .entry((sub.to_string(), stem))
            .or_insert_with(|| ChunkWriter {
                dir: arm_root.join(sub),
                limit,
                stem,
                chunk_no: 0,
                in_chunk: 0,
                open: None,
            });
        w.push(v)
    }

    fn count(&mut self, sub: &str, stem: &str, location: &str, v: &Value) {
        let mut names: Vec<&'static str> = Vec::new();
        match stem {
            "publicIPAddresses" => {
                names.push("PublicIPAddresses");
                if v.pointer("/properties/publicIPAllocationMethod")
                    .and_then(Value::as_str)
                    == Some("Static")
                {
                    names.push("StaticPublicIPAddresses");
                }
                if v.pointer("/sku/name").and_then(Value::as_str) == Some("Standard") {
                    names.push("StandardPublicIPAddresses");
                }
            }
            // VMSS NICs count against the regional NIC quota like any other NIC.
            "networkInterfaces" | "virtualMachineScaleSetNetworkInterfaces" => {
                names.push("NetworkInterfaces")
            }
            "loadBalancers" => names.push("LoadBalancers"),
            "networkSecurityGroups" => names.push("NetworkSecurityGroups"),
            "virtualNetworks" => names.push("VirtualNetworks"),
            _ => {}
        }
        if names.is_empty() {
            return;
        }
        let row = self
            .usage
            .entry((sub.to_string(), location.to_string()))
            .or_default();
        for n in names {
            *row.entry(n).or_default() += 1;
        }
    }

    /// Closes every open file; returns the usage counts.
    pub fn finish(mut self) -> io::Result<UsageCounts> {
        for w in self.writers.values_mut() {
            w.close()?;
        }
        Ok(self.usage)
    }
}
