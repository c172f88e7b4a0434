//! The collections a tenant's data is made of, each remembering which rows a mutation touched.
//!
//! A mutation runs on the live data. Every write through these collections records the row it
//! touched, with the value that row had before, the first time it touches it. Afterwards the
//! store asks for the touched rows only ([`Tracked::changes`]), writes them, and then either
//! forgets the old values ([`Tracked::commit`]) or puts them back ([`Tracked::rollback`]) when
//! the mutation or the write failed. A mutation therefore costs what it touched, never the size
//! of the tenant, and memory never holds what the disk does not.
//!
//! Reading goes through `Deref`: a [`Table`] reads as a slice, a [`Keyed`] as a `BTreeMap` and
//! a [`One`] as its value. Nothing mutable is reachable except through the methods here.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// One stored row as the store writes it: its key within its area, and its JSON body, or
/// `None` when the row is gone.
pub(crate) type Change = (String, Option<String>);

/// What the store needs of every area of a tenant's data.
pub(crate) trait Tracked {
    /// The rows touched since the last commit or rollback, as they are now.
    fn changes(&self, out: &mut Vec<Change>) -> serde_json::Result<()>;
    /// Every row, for writing a whole tenant at once (an import).
    fn all(&self, out: &mut Vec<Change>) -> serde_json::Result<()>;
    /// Forgets the values touched rows had before.
    fn commit(&mut self);
    /// Puts back what touched rows held before, and forgets it.
    fn rollback(&mut self);
    /// Adds one row read from the store.
    fn load(&mut self, key: &str, body: &str) -> Result<(), String>;
}

fn body(row: &impl Serialize) -> serde_json::Result<Option<String>> {
    serde_json::to_string(row).map(Some)
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    serde_json::from_str(body).map_err(|e| e.to_string())
}

/// Rows in the order they were added, as a `Vec` would keep them.
///
/// Each row has a sequence number, given when it is pushed and never changed, which is its
/// key in the store; rows are always sorted by it, so the order survives a restart.
#[derive(Debug)]
pub(crate) struct Table<T> {
    rows: Vec<T>,
    seqs: Vec<u64>,
    next: u64,
    /// The value each touched row had before the mutation, by sequence number; `None` for a
    /// row the mutation added.
    before: BTreeMap<u64, Option<T>>,
    next_before: Option<u64>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { rows: Vec::new(), seqs: Vec::new(), next: 1, before: BTreeMap::new(), next_before: None }
    }
}

impl<T> Deref for Table<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.rows
    }
}

impl<T: Clone> Table<T> {
    fn remember(&mut self, index: usize) {
        let seq = self.seqs[index];
        let rows = &self.rows;
        self.before.entry(seq).or_insert_with(|| Some(rows[index].clone()));
    }

    /// Adds a row at the end.
    pub(crate) fn push(&mut self, row: T) {
        let seq = self.next;
        self.next_before.get_or_insert(seq);
        self.next += 1;
        self.before.entry(seq).or_insert(None);
        self.rows.push(row);
        self.seqs.push(seq);
    }

    /// The row at `index`, to change. Panics when `index` is out of bounds, as indexing does.
    pub(crate) fn get_mut(&mut self, index: usize) -> &mut T {
        self.remember(index);
        &mut self.rows[index]
    }

    /// The first row that `matches`, to change.
    pub(crate) fn find_mut(&mut self, matches: impl Fn(&T) -> bool) -> Option<&mut T> {
        let index = self.rows.iter().position(matches)?;
        Some(self.get_mut(index))
    }

    /// Removes and returns the row at `index`.
    pub(crate) fn remove(&mut self, index: usize) -> T {
        self.remember(index);
        self.seqs.remove(index);
        self.rows.remove(index)
    }
}

impl<T: Clone + Serialize + DeserializeOwned> Tracked for Table<T> {
    fn changes(&self, out: &mut Vec<Change>) -> serde_json::Result<()> {
        for &seq in self.before.keys() {
            let now = self.seqs.binary_search(&seq).ok().map(|i| &self.rows[i]);
            out.push((seq_key(seq), now.map(body).transpose()?.flatten()));
        }
        Ok(())
    }

    fn all(&self, out: &mut Vec<Change>) -> serde_json::Result<()> {
        for (seq, row) in self.seqs.iter().zip(&self.rows) {
            out.push((seq_key(*seq), body(row)?));
        }
        Ok(())
    }

    fn commit(&mut self) {
        self.before.clear();
        self.next_before = None;
    }

    fn rollback(&mut self) {
        for (seq, old) in std::mem::take(&mut self.before) {
            match (self.seqs.binary_search(&seq), old) {
                (Ok(i), Some(old)) => self.rows[i] = old,
                (Ok(i), None) => {
                    self.seqs.remove(i);
                    self.rows.remove(i);
                }
                (Err(i), Some(old)) => {
                    self.seqs.insert(i, seq);
                    self.rows.insert(i, old);
                }
                (Err(_), None) => {}
            }
        }
        if let Some(next) = self.next_before.take() {
            self.next = next;
        }
    }

    fn load(&mut self, key: &str, body: &str) -> Result<(), String> {
        let seq: u64 = key.parse().map_err(|_| format!("the row key {key:?} is not a sequence number"))?;
        if self.seqs.last().is_some_and(|&last| last >= seq) {
            return Err(format!("the row {key:?} is out of order"));
        }
        self.rows.push(parse(body)?);
        self.seqs.push(seq);
        self.next = seq + 1;
        Ok(())
    }
}

/// The store key of a sequence number: fixed width, so that keys sort as numbers do.
fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// A tenant file written before the store kept rows held each table as a JSON array.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let rows = Vec::<T>::deserialize(deserializer)?;
        let seqs: Vec<u64> = (1..=rows.len() as u64).collect();
        Ok(Table { next: seqs.len() as u64 + 1, rows, seqs, before: BTreeMap::new(), next_before: None })
    }
}

/// Rows under string keys, in key order, as a `BTreeMap` keeps them.
#[derive(Debug)]
pub(crate) struct Keyed<T> {
    rows: BTreeMap<String, T>,
    before: BTreeMap<String, Option<T>>,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed { rows: BTreeMap::new(), before: BTreeMap::new() }
    }
}

impl<T> Deref for Keyed<T> {
    type Target = BTreeMap<String, T>;

    fn deref(&self) -> &BTreeMap<String, T> {
        &self.rows
    }
}

impl<T: Clone> Keyed<T> {
    fn remember(&mut self, key: &str) {
        if !self.before.contains_key(key) {
            self.before.insert(key.to_owned(), self.rows.get(key).cloned());
        }
    }

    /// Sets the row under `key`, returning what it held.
    pub(crate) fn insert(&mut self, key: String, row: T) -> Option<T> {
        self.remember(&key);
        self.rows.insert(key, row)
    }

    /// The row under `key`, to change.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        if !self.rows.contains_key(key) {
            return None;
        }
        self.remember(key);
        self.rows.get_mut(key)
    }

    /// The row under `key`, added with `make` when there is none, to change.
    pub(crate) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> T) -> &mut T {
        self.remember(key);
        self.rows.entry(key.to_owned()).or_insert_with(make)
    }

    /// Removes and returns the row under `key`.
    pub(crate) fn remove(&mut self, key: &str) -> Option<T> {
        if !self.rows.contains_key(key) {
            return None;
        }
        self.remember(key);
        self.rows.remove(key)
    }
}

impl<T: Clone + Serialize + DeserializeOwned> Tracked for Keyed<T> {
    fn changes(&self, out: &mut Vec<Change>) -> serde_json::Result<()> {
        for key in self.before.keys() {
            out.push((key.clone(), self.rows.get(key).map(body).transpose()?.flatten()));
        }
        Ok(())
    }

    fn all(&self, out: &mut Vec<Change>) -> serde_json::Result<()> {
        for (key, row) in &self.rows {
            out.push((key.clone(), body(row)?));
        }
        Ok(())
    }

    fn commit(&mut self) {
        self.before.clear();
    }

    fn rollback(&mut self) {
        for (key, old) in std::mem::take(&mut self.before) {
            match old {
                Some(old) => self.rows.insert(key, old),
                None => self.rows.remove(&key),
            };
        }
    }

    fn load(&mut self, key: &str, body: &str) -> Result<(), String> {
        self.rows.insert(key.to_owned(), parse(body)?);
        Ok(())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Keyed { rows: BTreeMap::deserialize(deserializer)?, before: BTreeMap::new() })
    }
}

/// A single value, stored as one row under the empty key.
#[derive(Debug, Default)]
pub(crate) struct One<T> {
    value: T,
    before: Option<T>,
}

impl<T> Deref for One<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Clone> One<T> {
    /// The value, to change.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        if self.before.is_none() {
            self.before = Some(self.value.clone());
        }
        &mut self.value
    }
}

impl<T: Clone + Serialize + DeserializeOwned> Tracked for One<T> {
    fn changes(&self, out: &mut Vec<Change>) -> serde_json::Result<()> {
        if self.before.is_some() {
            out.push((String::new(), body(&self.value)?));
        }
        Ok(())
    }

    fn all(&self, out: &mut Vec<Change>) -> serde_json::Result<()> {
        out.push((String::new(), body(&self.value)?));
        Ok(())
    }

    fn commit(&mut self) {
        self.before = None;
    }

    fn rollback(&mut self) {
        if let Some(old) = self.before.take() {
            self.value = old;
        }
    }

    fn load(&mut self, key: &str, body: &str) -> Result<(), String> {
        if !key.is_empty() {
            return Err(format!("a single value has no row {key:?}"));
        }
        self.value = parse(body)?;
        Ok(())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for One<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(One { value: T::deserialize(deserializer)?, before: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(area: &impl Tracked) -> Vec<Change> {
        let mut out = Vec::new();
        area.changes(&mut out).expect("changes");
        out
    }

    #[test]
    fn a_table_reports_only_touched_rows_and_rolls_back() {
        let mut t = Table::default();
        t.push("a".to_owned());
        t.push("b".to_owned());
        t.push("c".to_owned());
        t.commit();
        assert!(changes(&t).is_empty());

        *t.get_mut(1) = "B".to_owned();
        t.remove(0);
        t.push("d".to_owned());
        assert_eq!(
            changes(&t),
            vec![(seq_key(1), None), (seq_key(2), Some("\"B\"".to_owned())), (seq_key(4), Some("\"d\"".to_owned()))]
        );
        t.rollback();
        assert_eq!(&*t, ["a", "b", "c"]);
        t.push("e".to_owned());
        assert_eq!(changes(&t), vec![(seq_key(4), Some("\"e\"".to_owned()))]);
    }

    #[test]
    fn a_table_loads_in_order_and_continues_its_numbering() {
        let mut t: Table<String> = Table::default();
        t.load(&seq_key(3), "\"x\"").expect("load");
        t.load(&seq_key(7), "\"y\"").expect("load");
        assert!(t.load(&seq_key(5), "\"z\"").is_err());
        t.push("w".to_owned());
        assert_eq!(changes(&t), vec![(seq_key(8), Some("\"w\"".to_owned()))]);
    }

    #[test]
    fn keyed_rows_and_single_values_roll_back() {
        let mut k = Keyed::default();
        k.insert("a".to_owned(), 1);
        k.commit();
        *k.get_or_insert_with("a", || 0) += 1;
        k.insert("b".to_owned(), 5);
        assert!(k.remove("nothing").is_none());
        assert_eq!(changes(&k), vec![("a".to_owned(), Some("2".to_owned())), ("b".to_owned(), Some("5".to_owned()))]);
        k.rollback();
        assert_eq!(k.get("a"), Some(&1));
        assert!(!k.contains_key("b"));

        let mut one = One::<u64>::default();
        *one.get_mut() = 9;
        assert_eq!(changes(&one), vec![(String::new(), Some("9".to_owned()))]);
        one.rollback();
        assert_eq!(*one, 0);
    }
}
