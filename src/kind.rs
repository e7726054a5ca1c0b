//! What a handle names: the list of kinds. The numbers are part of the handle encoding.

use std::fmt;

/// What a handle names. The numbers are part of the handle encoding: never reuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Manager = 1,
    Db = 2,
    ColumnFamily = 3,
    Foreign = 4,
    Iterator = 5,
    Snapshot = 6,
    Batch = 7,
    Monitor = 8,
}

impl Kind {
    pub fn from_bits(bits: u8) -> Option<Kind> {
        Some(match bits {
            1 => Kind::Manager,
            2 => Kind::Db,
            3 => Kind::ColumnFamily,
            4 => Kind::Foreign,
            5 => Kind::Iterator,
            6 => Kind::Snapshot,
            7 => Kind::Batch,
            8 => Kind::Monitor,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Manager => "manager",
            Kind::Db => "db",
            Kind::ColumnFamily => "column_family",
            Kind::Foreign => "foreign",
            Kind::Iterator => "iterator",
            Kind::Snapshot => "snapshot",
            Kind::Batch => "batch",
            Kind::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
