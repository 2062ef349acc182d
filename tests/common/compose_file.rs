//! `docker-compose.yml` as the compose tests read it, merge keys resolved.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Compose {
    pub services: BTreeMap<String, Service>,
}

#[derive(Deserialize)]
pub struct Service {
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
}

#[derive(Deserialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
}

pub fn compose() -> Compose {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("read compose file");
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text).expect("parse compose file");
    value.apply_merge().expect("resolve << merge keys");
    serde_yaml::from_value(value).expect("compose file shape")
}
