//! Reading an event from its type name and its stored data text as if the
//! two were one `{"type": ..., "data": ...}` object, without writing that
//! object out: the data is parsed where it lies. A bulk rebuild reads every
//! receipt of the log this way; copying each into a bigger string first
//! cost an allocation and a copy of a kilobyte or more per event.

use serde::de::value::StrDeserializer;
use serde::de::{DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::de::StrRead;

/// Deserializes a `T` tagged by `type` with content `data` (serde's
/// adjacently tagged enums) from `event_type` and the JSON text `data`.
pub(crate) fn from_tagged_text<'de, T: Deserialize<'de>>(event_type: &str, data: &'de str) -> serde_json::Result<T> {
    let mut json = serde_json::Deserializer::from_str(data);
    let value = T::deserialize(Tagged { event_type, data: &mut json })?;
    // Nothing but whitespace may follow the data.
    json.end()?;
    Ok(value)
}

/// The object `{"type": event_type, "data": <data>}`, read lazily.
struct Tagged<'a, 'de> {
    event_type: &'a str,
    data: &'a mut serde_json::Deserializer<StrRead<'de>>,
}

impl<'de> serde::Deserializer<'de> for Tagged<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> serde_json::Result<V::Value> {
        visitor.visit_map(Fields { event_type: self.event_type, data: self.data, read: 0 })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The two fields, the tag first, so serde reads the data straight into
/// the variant it names instead of buffering it.
struct Fields<'a, 'de> {
    event_type: &'a str,
    data: &'a mut serde_json::Deserializer<StrRead<'de>>,
    /// Values read so far.
    read: u8,
}

impl<'de> MapAccess<'de> for Fields<'_, 'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> serde_json::Result<Option<K::Value>> {
        let key = match self.read {
            0 => "type",
            1 => "data",
            _ => return Ok(None),
        };
        let key: StrDeserializer<'_, serde_json::Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> serde_json::Result<V::Value> {
        self.read += 1;
        if self.read == 1 {
            let tag: StrDeserializer<'_, serde_json::Error> = self.event_type.into_deserializer();
            seed.deserialize(tag)
        } else {
            seed.deserialize(&mut *self.data)
        }
    }
}
