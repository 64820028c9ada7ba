//! Grade-point scales: the built-in `standard4` and a department's own from the config.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::values::*;

// ---------------------------------------------------------------------------------------------
// Scales
// ---------------------------------------------------------------------------------------------

/// One band of a numeric scale: scores at or above `min_score` (and below the band above)
/// get `points`. Both in hundredths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Band {
    pub min_score: u32,
    pub points: u32,
}

/// A grade-point scale. Serialized as its [`ScaleConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scale {
    // Strictly descending by `min_score`, points non-increasing; a score below the last band
    // gets 0 points.
    bands: Vec<Band>,
    // Points for 优秀 良好 中等 及格 不及格, in hundredths.
    levels: [u32; 5],
}

const STANDARD4_BANDS: [(u32, u32); 10] = [
    (9000, 400),
    (8500, 370),
    (8200, 330),
    (7800, 300),
    (7500, 270),
    (7200, 230),
    (6800, 200),
    (6400, 150),
    (6000, 100),
    (0, 0),
];
const STANDARD_LEVELS: [u32; 5] = [400, 300, 200, 100, 0];

impl Scale {
    /// The SPEC's default scale `standard4`.
    pub fn standard4() -> Scale {
        Scale {
            bands: STANDARD4_BANDS
                .iter()
                .map(|&(min_score, points)| Band { min_score, points })
                .collect(),
            levels: STANDARD_LEVELS,
        }
    }

    /// The numeric bands, highest first.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// Points (hundredths) for a five-level grade.
    pub fn level_points(&self, level: FiveLevel) -> u32 {
        self.levels.get(level.index()).copied().unwrap_or(0)
    }

    /// Grade point in hundredths, or `None` for 合格/不合格 and statuses.
    pub fn grade_point(&self, score: &Score) -> Option<u32> {
        match *score {
            Score::Numeric(h) => Some(
                self.bands
                    .iter()
                    .find(|b| h >= b.min_score)
                    .map_or(0, |b| b.points),
            ),
            Score::Level(l) => Some(self.level_points(l)),
            Score::PassFail(_) | Score::Status(_) => None,
        }
    }

    /// Builds a scale from the config, checking it. Messages say what is wrong.
    pub fn from_config(config: &ScaleConfig) -> Result<Scale, String> {
        match config {
            ScaleConfig::Named(name) => match name.trim().to_ascii_lowercase().as_str() {
                "standard4" => Ok(Scale::standard4()),
                _ => Err(format!(
                    "unknown grade scale {name:?}: use \"standard4\" or a table \
                     {{ bands = [[90, 4.0], [80, 3.0], ...], levels = {{ \"优秀\" = 4.0, ... }} }}"
                )),
            },
            ScaleConfig::Custom(custom) => Scale::from_custom(custom),
        }
    }

    fn from_custom(custom: &CustomScale) -> Result<Scale, String> {
        if custom.bands.is_empty() {
            return Err(
                "scale.bands is empty: give at least one [lower bound, points] pair, \
                        e.g. [[60, 1.0], [0, 0]]"
                    .to_string(),
            );
        }
        let mut bands: Vec<Band> = Vec::with_capacity(custom.bands.len());
        for &(bound, points) in &custom.bands {
            let min_score = config_hundredths(bound, 100).ok_or_else(|| {
                format!(
                    "scale.bands: lower bound {bound} in [{bound}, {points}] must be a score from 0 to 100 \
                     with at most two decimals"
                )
            })?;
            let pts = config_hundredths(points, 5).ok_or_else(|| {
                format!(
                    "scale.bands: grade point {points} in [{bound}, {points}] must be from 0 to 5 \
                     with at most two decimals"
                )
            })?;
            if let Some(prev) = bands.last() {
                if min_score >= prev.min_score {
                    return Err(format!(
                        "scale.bands must be listed from the highest lower bound down: {bound} comes after {}",
                        Hundredths(prev.min_score)
                    ));
                }
                if pts > prev.points {
                    return Err(format!(
                        "scale.bands: band [{bound}, {points}] gives more points than the band above it \
                         [{}, {}]",
                        Hundredths(prev.min_score),
                        Hundredths(prev.points)
                    ));
                }
            }
            bands.push(Band {
                min_score,
                points: pts,
            });
        }
        let levels = match &custom.levels {
            None => STANDARD_LEVELS,
            Some(map) => {
                let mut levels = [0u32; 5];
                let mut given = [false; 5];
                for (key, &value) in map {
                    let level = FiveLevel::from_config_key(key).ok_or_else(|| {
                        format!(
                            "scale.levels: unknown level {key:?}; the levels are \"优秀\", \"良好\", \"中等\", \"及格\", \"不及格\" \
                             (quoted in TOML) or excellent, good, medium, pass, fail"
                        )
                    })?;
                    if given.get(level.index()) == Some(&true) {
                        return Err(format!("scale.levels: {} is given twice", level.label()));
                    }
                    if let Some(g) = given.get_mut(level.index()) {
                        *g = true;
                    }
                    let pts = config_hundredths(value, 5).ok_or_else(|| {
                        format!(
                            "scale.levels: {key} = {value} must be from 0 to 5 with at most two decimals"
                        )
                    })?;
                    if let Some(slot) = levels.get_mut(level.index()) {
                        *slot = pts;
                    }
                }
                let missing: Vec<&str> = FiveLevel::ALL
                    .iter()
                    .filter(|l| given.get(l.index()) != Some(&true))
                    .map(|l| l.label())
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "scale.levels must give all five levels; missing: {}",
                        missing.join(", ")
                    ));
                }
                levels
            }
        };
        Ok(Scale { bands, levels })
    }

    /// The config that builds this scale (`"standard4"` when it is the standard one).
    pub fn to_config(&self) -> ScaleConfig {
        if *self == Scale::standard4() {
            return ScaleConfig::Named("standard4".to_string());
        }
        let f = |h: u32| f64::from(h) / 100.0;
        ScaleConfig::Custom(CustomScale {
            bands: self
                .bands
                .iter()
                .map(|b| (f(b.min_score), f(b.points)))
                .collect(),
            levels: Some(
                FiveLevel::ALL
                    .iter()
                    .map(|&l| (l.label().to_string(), f(self.level_points(l))))
                    .collect(),
            ),
        })
    }
}

impl Default for Scale {
    fn default() -> Self {
        Scale::standard4()
    }
}

impl Serialize for Scale {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_config().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scale {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let config = ScaleConfig::deserialize(d)?;
        Scale::from_config(&config).map_err(de::Error::custom)
    }
}

/// Display helper for hundredths in messages.
pub(super) struct Hundredths(pub(super) u32);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hundredths(f, u64::from(self.0))
    }
}

/// A config number (integer or float) as hundredths, if it is finite, within 0..=max and has at
/// most two decimals.
pub(super) fn config_hundredths(v: f64, max: u32) -> Option<u32> {
    if !v.is_finite() || v < 0.0 || v > f64::from(max) {
        return None;
    }
    let scaled = v * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return None;
    }
    Some(rounded as u32)
}

/// The `[grades] scale` setting: a scale name, or a table of bands and (optionally) levels.
///
/// ```toml
/// scale = "standard4"
/// # or
/// scale = { bands = [[90, 4.0], [80, 3.0], [70, 2.0], [60, 1.0], [0, 0]], levels = { "优秀" = 4.0, "良好" = 3.0, "中等" = 2.0, "及格" = 1.0, "不及格" = 0 } }
/// ```
///
/// TOML does not allow bare Chinese keys, so the level names are quoted; the English keys
/// `excellent good medium pass fail` may be used unquoted instead.
///
/// Deserialization is hand-written (the shape of `#[serde(untagged)]`) so that a mistake in the
/// table gets serde's precise message (e.g. the unknown key's name) instead of
/// "data did not match any variant".
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScaleConfig {
    /// A built-in scale by name: `"standard4"`.
    Named(String),
    /// A department's own scale.
    Custom(CustomScale),
}

impl Default for ScaleConfig {
    fn default() -> Self {
        ScaleConfig::Named("standard4".to_string())
    }
}

/// A department's own scale as written in the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomScale {
    /// `[lower bound, grade point]` pairs, highest lower bound first. A score below the last
    /// lower bound gets 0.
    pub bands: Vec<(f64, f64)>,
    /// Points for 优秀 良好 中等 及格 不及格 (all five); the SPEC's 4/3/2/1/0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<BTreeMap<String, f64>>,
}

impl<'de> Deserialize<'de> for ScaleConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScaleVisitor;
        impl<'de> Visitor<'de> for ScaleVisitor {
            type Value = ScaleConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a scale name such as \"standard4\", or a table { bands = [[90, 4.0], ...], levels = { \"优秀\" = 4.0, ... } }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScaleConfig, E> {
                Ok(ScaleConfig::Named(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ScaleConfig, A::Error> {
                CustomScale::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ScaleConfig::Custom)
            }
        }
        d.deserialize_any(ScaleVisitor)
    }
}
