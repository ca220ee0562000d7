//! Post-boot verification (being written).
