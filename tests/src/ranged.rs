//! A ranged read on a blocking dump, on either server.

use binlog_cdc::decoder::source::connect::ConnectOptions;
use binlog_cdc::decoder::source::server::{ServerSource, HEARTBEAT_PERIOD};
use binlog_cdc::decoder::source::types::{HEARTBEAT, HEARTBEAT_V2};
use binlog_cdc::decoder::source::EventSource;
use binlog_cdc::BinlogPosition;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use std::time::{Duration, Instant};

/// How many events `[from, to)` holds; panics on any error.
pub async fn count_events(
    options: &ConnectOptions,
    from: &BinlogPosition,
    to: &BinlogPosition,
) -> i64 {
    let mut source = ServerSource::open(options, from, Some(to.clone()), 4343)
        .await
        .expect("open");
    let mut n = 0;
    while let Some(_event) = source
        .next_event()
        .await
        .unwrap_or_else(|e| panic!("range {from}..{to}: {e}"))
    {
        n += 1;
    }
    n
}

/// A range to the end of the log is read whole, and the server's dump
/// thread, left waiting for the next commit, is gone soon after though
/// nothing more is committed. `sql` runs SQL as root, `position` is the
/// log's end.
pub async fn to_the_end_leaves_no_dump_thread(
    url: String,
    sql: &dyn Fn(&str) -> String,
    position: &dyn Fn() -> BinlogPosition,
) {
    let from = position();
    sql("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY); INSERT INTO r.t VALUES (1);");
    let to = position();
    let events = count_events(&url.into(), &from, &to).await;
    assert!(events >= 4, "{events} events in {from}..{to}");
    let dumps = || {
        sql("SELECT COUNT(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
    };
    let began = Instant::now();
    while dumps().trim() != "0" {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "a dump thread outlived its reader by 10 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A blocking dump at the end of the log, with the heartbeat period
/// `ServerSource` asks for, sends heartbeats that mysql_async parses and
/// whose types are the ones the reader skips.
pub async fn heartbeats_arrive_and_parse(url: String, end: BinlogPosition) {
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connects");
    let ns = HEARTBEAT_PERIOD.as_nanos();
    conn.query_drop(format!("SET @master_heartbeat_period = {ns}, @source_heartbeat_period = {ns}, @mariadb_slave_capability = 4"))
        .await
        .expect("set");
    let request = BinlogStreamRequest::new(4344)
        .with_filename(end.file().as_bytes())
        .with_pos(end.pos());
    let mut stream = conn.get_binlog_stream(request).await.expect("dump");
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a heartbeat within 5 s")
            .expect("the stream goes on")
            .expect("mysql_async parses it");
        let t = event.header().event_type_raw();
        if t == HEARTBEAT || t == HEARTBEAT_V2 {
            return;
        }
    }
}
