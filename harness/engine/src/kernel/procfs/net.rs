//! The TCP and UDP tables of `/proc/thread-self/net`: the fallback for a
//! kernel without socket diagnostics. Each read costs the whole table.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ticks_per_second;
use crate::kernel::tcpsock::{TcpSocket, TcpState};
use crate::kernel::udpsock::UdpSocket;

/// Every socket of the calling thread's network namespace, from
/// `/proc/thread-self/net/tcp{,6}`. Costs a read of the whole table (every
/// TIME_WAIT included): the fallback for a kernel without socket
/// diagnostics.
pub fn tcp_table() -> Vec<TcpSocket> {
    let mut all = parse_tcp_table(&net_table("tcp"), false);
    all.extend(parse_tcp_table(&net_table("tcp6"), true));
    all
}

/// Every UDP socket of the calling thread's network namespace, from
/// `/proc/thread-self/net/udp{,6}`: the fallback for a kernel without UDP
/// socket diagnostics (`udp_diag`).
pub fn udp_table() -> Vec<UdpSocket> {
    let mut all = parse_udp_table(&net_table("udp"), false);
    all.extend(parse_udp_table(&net_table("udp6"), true));
    all
}

fn net_table(name: &str) -> String {
    fs::read_to_string(format!("/proc/thread-self/net/{name}")).unwrap_or_default()
}

/// Parses a `/proc/net/tcp` table; rows it cannot read are left out.
pub fn parse_tcp_table(table: &str, v6: bool) -> Vec<TcpSocket> {
    rows(table, v6)
        .filter_map(|r| {
            Some(TcpSocket {
                local: r.local,
                remote: r.remote,
                state: TcpState::from_number(r.state)?,
                inode: r.inode,
                timer_ms: (r.timer_ticks * 1000 / ticks_per_second()).min(u64::from(u32::MAX))
                    as u32,
            })
        })
        .collect()
}

/// Parses a `/proc/net/udp` table (the same columns as TCP's); rows it
/// cannot read are left out.
pub fn parse_udp_table(table: &str, v6: bool) -> Vec<UdpSocket> {
    rows(table, v6)
        .map(|r| UdpSocket {
            local: r.local,
            remote: r.remote,
            inode: r.inode,
            queued: r.rx_queue,
        })
        .collect()
}

/// One row of a `/proc/net/{tcp,udp}` table.
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    inode: u64,
    timer_ticks: u64,
    /// The receive queue (`rx_queue` of `tx_queue:rx_queue`).
    rx_queue: u64,
}

fn rows(table: &str, v6: bool) -> impl Iterator<Item = Row> + '_ {
    table.lines().skip(1).filter_map(move |line| {
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        let f: Vec<&str> = line.split_whitespace().collect();
        let endpoint = |text: &str| -> Option<SocketAddr> {
            let (addr, port) = text.split_once(':')?;
            Some(SocketAddr::new(
                parse_addr(addr, v6)?,
                u16::from_str_radix(port, 16).ok()?,
            ))
        };
        let timer_ticks = f
            .get(5)
            .and_then(|t| t.split_once(':'))
            .and_then(|(_, when)| u64::from_str_radix(when, 16).ok())
            .unwrap_or(0);
        let rx_queue = f
            .get(4)
            .and_then(|q| q.split_once(':'))
            .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
            .unwrap_or(0);
        Some(Row {
            local: endpoint(f.get(1)?)?,
            remote: endpoint(f.get(2)?)?,
            state: u8::from_str_radix(f.get(3)?, 16).ok()?,
            inode: f.get(9)?.parse().ok()?,
            timer_ticks,
            rx_queue,
        })
    })
}

/// `/proc/net/tcp` prints each 32-bit word of an address as the machine
/// holds it in memory, so the octets are the word's native-endian bytes.
fn parse_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    if !v6 {
        return Some(IpAddr::V4(Ipv4Addr::from(word(hex)?)));
    }
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut octets = [0u8; 16];
    for i in 0..4 {
        octets[i * 4..i * 4 + 4].copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(octets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D432 06 00000000:00000000 03:00000064 00000000     0        0 0 3 0
";

    #[test]
    fn reads_state_addresses_and_inode_of_each_row() {
        let rows = parse_tcp_table(TCP, false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].state, TcpState::Listen);
        assert_eq!(rows[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(rows[0].inode, 1);
        assert_eq!(rows[1].state, TcpState::Established);
        assert_eq!(rows[1].remote, "127.0.0.1:54321".parse().unwrap());
    }

    #[test]
    fn a_udp_row_gives_the_bound_address_and_inode() {
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 4547: 0100007F:8F82 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1662453 2 0000000032e5b854 0
";
        let rows = parse_udp_table(udp, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, "127.0.0.1:36738".parse().unwrap());
        assert_eq!(rows[0].remote, "0.0.0.0:0".parse().unwrap());
        assert_eq!(rows[0].inode, 1662453);
        assert_eq!(rows[0].queued, 0);
    }

    #[test]
    fn a_udp_row_gives_what_waits_in_its_receive_queue() {
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 4547: 0100007F:8F82 00000000:0000 07 00000000:00000900 00:00000000 00000000     0        0 1662453 2 0000000032e5b854 0
";
        assert_eq!(parse_udp_table(udp, false)[0].queued, 0x900);
    }

    #[test]
    fn a_time_wait_row_has_its_timer() {
        let tw = parse_tcp_table(TCP, false)[2];
        assert_eq!(tw.state, TcpState::TimeWait);
        assert_eq!(tw.inode, 0);
        assert_eq!(tw.timer_ms as u64, 100 * 1000 / ticks_per_second());
    }

    #[test]
    fn reads_ipv6_loopback() {
        let t6 = "header\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0 0 7\n";
        let rows = parse_tcp_table(t6, true);
        assert_eq!(rows[0].local.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(rows[0].local.port(), 8080);
    }
}
