//! Column metadata from information_schema, for table maps that lack
//! names, signedness or charsets (`binlog_row_metadata=MINIMAL`).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{Error, Result};
use crate::source::connect::{connect, ConnectOptions};

/// information_schema lookups over a plain connection, for table maps that
/// lack names, signedness or charsets.
pub struct InformationSchema {
    conn: Conn,
}

impl InformationSchema {
    pub async fn connect(db: &ConnectOptions) -> Result<Self> {
        Ok(Self {
            conn: connect(db).await?,
        })
    }
}

impl crate::schema::SchemaLookup for InformationSchema {
    fn columns<'a>(
        &'a mut self,
        schema: &'a str,
        table: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<crate::schema::InfoColumn>>> + Send + 'a>,
    > {
        Box::pin(async move {
            type Row = (String, String, String, Option<String>, String);
            let rows: Vec<Row> = self
                .conn
                .exec(
                    "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), CHARACTER_SET_NAME, COLUMN_KEY \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                     ORDER BY ORDINAL_POSITION",
                    (schema, table),
                )
                .await
                .map_err(|e| Error::mysql(format!("reading information_schema for {schema}.{table}"), e))?;
            Ok(rows
                .into_iter()
                .map(
                    |(name, data_type, column_type, charset, key)| crate::schema::InfoColumn {
                        name,
                        data_type,
                        column_type,
                        charset,
                        is_primary_key: key == "PRI",
                    },
                )
                .collect())
        })
    }
}
