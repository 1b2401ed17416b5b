//! How [`Value`]s cross the PostgreSQL wire. PostgreSQL types every
//! parameter from its context, so a value converts to the type the
//! statement asks for (an integer to `bigint`, `boolean` or `text`); results
//! of any numeric or text type read back as the value SQLite would give.

use std::error::Error;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use super::Value;

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => int_to_sql(*i, ty, out),
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                Type::INT8 | Type::INT4 | Type::INT2 if r.fract() == 0.0 => {
                    int_to_sql(*r as i64, ty, out)
                }
                _ if is_text(ty) => r.to_string().to_sql(&Type::TEXT, out),
                _ => Err(format!("a real bound where the statement wants {ty}").into()),
            },
            Value::Text(s) => match *ty {
                _ if is_text(ty) => s.as_str().to_sql(&Type::TEXT, out),
                _ => Err(format!("text bound where the statement wants {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn int_to_sql(i: i64, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::INT8 => i.to_sql(ty, out),
        Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
        Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
        Type::FLOAT8 => (i as f64).to_sql(ty, out),
        Type::FLOAT4 => (i as f32).to_sql(ty, out),
        Type::BOOL => (i != 0).to_sql(ty, out),
        _ if is_text(ty) => i.to_string().to_sql(&Type::TEXT, out),
        _ => Err(format!("an integer bound where the statement wants {ty}").into()),
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            _ if is_text(ty) => Value::Text(String::from_sql(&Type::TEXT, raw)?),
            _ => {
                return Err(format!("a column of type {ty}, which the history never holds").into())
            }
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` in PostgreSQL's binary form (digits in base 10,000 with a
/// weight, a sign and a display scale): an integer when it has no
/// fraction, else a real.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a truncated numeric".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let scale = word(3)?;
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut real = 0.0f64;
    let mut int: Option<i64> = Some(0);
    for i in 0..ndigits {
        let digit = i64::from(word(4 + i)?);
        let power = weight - i as i32;
        real += digit as f64 * 10_000f64.powi(power);
        int = match (int, u32::try_from(power)) {
            (Some(acc), Ok(p)) => 10_000i64
                .checked_pow(p)
                .and_then(|m| digit.checked_mul(m))
                .and_then(|v| acc.checked_add(v)),
            // A digit after the point that is not zero: not an integer.
            (_, Err(_)) if digit != 0 => None,
            (acc, _) => acc,
        };
    }
    let negative = sign == 0x4000;
    Ok(match int {
        Some(i) if scale == 0 => Value::Int(if negative { -i } else { i }),
        _ => Value::Real(if negative { -real } else { real }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, scale]
            .iter()
            .chain(digits)
        {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_read_as_integers_or_reals() {
        // 123456789 = 1_2345_6789
        assert_eq!(
            numeric(&raw(2, 0, 0, &[1, 2345, 6789])).unwrap(),
            Value::Int(123_456_789)
        );
        assert_eq!(numeric(&raw(0, 0x4000, 0, &[42])).unwrap(), Value::Int(-42));
        assert_eq!(numeric(&raw(0, 0, 0, &[])).unwrap(), Value::Int(0));
        // 12.5 = 12 . 5000
        assert_eq!(
            numeric(&raw(0, 0, 1, &[12, 5000])).unwrap(),
            Value::Real(12.5)
        );
        // 20000 with a display scale is still a real, as SQLite's would be
        assert_eq!(numeric(&raw(1, 0, 1, &[2])).unwrap(), Value::Real(20_000.0));
        assert!(numeric(&[0, 1]).is_err());
    }
}
