//! Configures the child's network namespace over rtnetlink: loopback up, the tap device's MTU,
//! address and state, and the default routes (no `ip` command involved).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, bail, Context};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// What to configure on the namespace's interface.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ifname: String,
    pub mtu: u32,
    pub v4: (Ipv4Addr, u8, Ipv4Addr),
    pub v6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
}

/// A synchronous rtnetlink socket that checks every request's acknowledgement.
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> anyhow::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).context("cannot open a netlink socket")?;
        sock.bind_auto().context("cannot bind the netlink socket")?;
        sock.connect(&SocketAddr::new(0, 0))
            .context("cannot connect the netlink socket")?;
        Ok(Rtnl { sock, seq: 0 })
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> anyhow::Result<()> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .with_context(|| format!("netlink: cannot send the request to {what}"))?;
        loop {
            let (data, _) = self
                .sock
                .recv_from_full()
                .with_context(|| format!("netlink: no answer to {what}"))?;
            let mut off = 0;
            while off < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| anyhow!("netlink: cannot parse the answer to {what}: {e}"))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    if let NetlinkPayload::Error(e) = reply.payload {
                        return match e.code {
                            None => Ok(()),
                            Some(_) => Err(anyhow!("netlink: cannot {what}: {}", e.to_io())),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }
}

fn link_index(name: &str) -> anyhow::Result<u32> {
    nix::net::if_::if_nametoindex(name)
        .with_context(|| format!("no network interface {name:?} in the namespace"))
}

fn link_up(nl: &mut Rtnl, index: u32, mtu: Option<u32>, name: &str) -> anyhow::Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    if let Some(mtu) = mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    nl.request(
        RouteNetlinkMessage::SetLink(m),
        0,
        &format!("bring {name} up"),
    )
}

fn add_address(
    nl: &mut Rtnl,
    index: u32,
    ip: IpAddr,
    prefix: u8,
    name: &str,
) -> anyhow::Result<()> {
    let mut m = AddressMessage::default();
    m.header.family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Address(ip));
    if ip.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(ip));
    } else {
        // No duplicate address detection: the namespace's link has only the stack on it, and
        // DAD would leave the address unusable ("tentative") for its first second.
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    nl.request(
        RouteNetlinkMessage::NewAddress(m),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("add {ip}/{prefix} to {name}"),
    )
}

fn add_default_route(nl: &mut Rtnl, index: u32, gw: IpAddr) -> anyhow::Result<()> {
    let mut m = RouteMessage::default();
    m.header.address_family = if gw.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    m.attributes.push(RouteAttribute::Oif(index));
    nl.request(
        RouteNetlinkMessage::NewRoute(m),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("add the default route via {gw}"),
    )
}

/// Brings loopback up (every new network namespace needs it).
pub fn loopback_up() -> anyhow::Result<()> {
    let mut nl = Rtnl::open()?;
    let lo = link_index("lo")?;
    link_up(&mut nl, lo, None, "lo")
}

/// Gives interface `name` the MAC address `mac` (slirp4netns's --macaddress); done before the
/// interface is brought up.
pub fn set_mac(name: &str, mac: [u8; 6]) -> anyhow::Result<()> {
    let mut nl = Rtnl::open()?;
    let mut m = LinkMessage::default();
    m.header.index = link_index(name)?;
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    nl.request(
        RouteNetlinkMessage::SetLink(m),
        0,
        &format!("set the MAC address of {name}"),
    )
}

/// Deletes the bridge `name` from this network namespace; false when there is none (or `name`
/// is not a bridge, which is left alone). Runs in the namespace that holds it, asked over
/// netlink: /sys/class/net shows the namespace sysfs was mounted in, which is not this one
/// after a setns (a launcher's --detach-netns namespace).
pub fn delete_bridge(name: &str) -> anyhow::Result<bool> {
    bridge_request(name, "delete", RouteNetlinkMessage::DelLink)
}

/// Takes the bridge `name` down, which removes its routes (the subnet's, and its addresses'
/// local ones) at once, so that a new network may take the same subnet before the bridge is
/// deleted; false when there is no such bridge.
pub fn bridge_down(name: &str) -> anyhow::Result<bool> {
    bridge_request(name, "take down", |mut m| {
        m.header.change_mask = LinkFlags::Up;
        RouteNetlinkMessage::SetLink(m)
    })
}

/// Sends `request` built on a link message for the bridge `name` (`verb` says what it does,
/// for the error); false when there is no such bridge.
fn bridge_request(
    name: &str,
    verb: &str,
    request: impl FnOnce(LinkMessage) -> RouteNetlinkMessage,
) -> anyhow::Result<bool> {
    let Some(index) = bridge_index(name)? else {
        return Ok(false);
    };
    let mut nl = Rtnl::open()?;
    let mut m = LinkMessage::default();
    m.header.index = index;
    nl.request(request(m), 0, &format!("{verb} the bridge {name}"))?;
    Ok(true)
}

/// The index of the bridge `name`; None when there is no such link or it is no bridge.
fn bridge_index(name: &str) -> anyhow::Result<Option<u32>> {
    let Ok(index) = link_index(name) else {
        return Ok(None);
    };
    let is_bridge = get_link(index, name)?.attributes.iter().any(|a| {
        matches!(a, LinkAttribute::LinkInfo(info)
            if info.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))))
    });
    Ok(is_bridge.then_some(index))
}

/// Configures the tap device by `plan`. Runs inside the namespace (the child, single-threaded).
pub fn configure(plan: &Plan) -> anyhow::Result<()> {
    let mut nl = Rtnl::open()?;
    let idx = link_index(&plan.ifname)?;
    link_up(&mut nl, idx, Some(plan.mtu), &plan.ifname)?;
    let (ip, prefix, gw) = plan.v4;
    add_address(&mut nl, idx, ip.into(), prefix, &plan.ifname)?;
    add_default_route(&mut nl, idx, gw.into())?;
    if let Some((ip6, prefix6, gw6)) = plan.v6 {
        add_address(&mut nl, idx, ip6.into(), prefix6, &plan.ifname)?;
        add_default_route(&mut nl, idx, gw6.into())?;
    }
    if plan.mtu < 1280 {
        bail!("MTU {} is below the IPv6 minimum", plan.mtu);
    }
    Ok(())
}

/// The interface of the IPv4 default route in the calling thread's network namespace, from
/// `/proc/self/net/route` (which shows the reader's namespace).
pub fn default_route_ifname() -> Option<String> {
    let table = std::fs::read_to_string("/proc/self/net/route").ok()?;
    parse_default_route(&table)
}

fn parse_default_route(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let mut f = line.split_whitespace();
        let (name, dest) = (f.next()?, f.next()?);
        let mask = f.nth(5)?;
        (dest == "00000000" && mask == "00000000").then(|| name.to_string())
    })
}

/// The MTU of the link `name` in the calling thread's network namespace (rtnetlink GETLINK).
pub fn link_mtu(name: &str) -> anyhow::Result<u32> {
    get_link(link_index(name)?, name)?
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .ok_or_else(|| anyhow!("netlink: the link {name} has no MTU"))
}

/// The link `index` (named `name`) of this network namespace, as netlink describes it.
fn get_link(index: u32, name: &str) -> anyhow::Result<LinkMessage> {
    let mut nl = Rtnl::open()?;
    nl.seq += 1;
    let mut m = LinkMessage::default();
    m.header.index = index;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = nl.seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(m)),
    );
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    nl.sock
        .send(&buf, 0)
        .context("netlink: cannot ask for a link")?;
    let (data, _) = nl
        .sock
        .recv_from_full()
        .context("netlink: no answer about the link")?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data)
        .map_err(|e| anyhow!("netlink: cannot parse the link of {name}: {e}"))?;
    match reply.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => Ok(link),
        NetlinkPayload::Error(e) => Err(anyhow!("netlink: cannot read link {name}: {}", e.to_io())),
        _ => Err(anyhow!("netlink: unexpected answer about link {name}")),
    }
}

/// The MTU of the namespace's uplink (the IPv4 default route's interface: a launcher's `tap0`),
/// or None without a default route.
pub fn uplink_mtu() -> anyhow::Result<Option<u32>> {
    match default_route_ifname() {
        Some(name) => link_mtu(&name).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_interface_from_proc_table() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     nerdctl0\t0000040A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     tap0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(parse_default_route(table).as_deref(), Some("tap0"));
        assert_eq!(
            parse_default_route(&table[..table.find("tap0").unwrap()]),
            None
        );
    }

    #[test]
    fn loopback_mtu_is_read_over_netlink() {
        assert_eq!(link_mtu("lo").unwrap(), 65536);
    }
}
