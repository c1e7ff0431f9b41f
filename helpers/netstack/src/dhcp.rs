//! A DHCP server for the namespace, as libslirp serves one: leases from `.15` of the network
//! (one address per MAC address, 16 at most), the gateway `.2` as router and server, `.3` as DNS.

use std::net::Ipv4Addr;

use smoltcp::wire::{DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress};

use crate::StackConfig;

/// The first leased address's offset in the network (libslirp's).
const FIRST_LEASE: u32 = 15;
/// How many clients get an address (libslirp's NB_BOOTP_CLIENTS).
const MAX_CLIENTS: usize = 16;
/// Lease time in seconds (libslirp's: a day).
const LEASE_SECS: u32 = 24 * 3600;
/// The DHCP option carrying DNS servers.
const OPTION_DNS: u8 = 6;

/// The leases handed out, by MAC address (the index gives the address).
#[derive(Default)]
pub(crate) struct Dhcp {
    leases: Vec<EthernetAddress>,
}

impl Dhcp {
    /// The address leased to `mac`, assigning the next free one to a new client.
    fn lease(&mut self, cfg: &StackConfig, mac: EthernetAddress) -> Option<Ipv4Addr> {
        let i = match self.leases.iter().position(|m| *m == mac) {
            Some(i) => i,
            None if self.leases.len() < MAX_CLIENTS => {
                self.leases.push(mac);
                self.leases.len() - 1
            }
            None => return None,
        };
        Some(Ipv4Addr::from(
            u32::from(cfg.gateway()) - 2 + FIRST_LEASE + i as u32,
        ))
    }

    /// The reply to a client's DHCP message (`payload` of a UDP datagram to port 67), and the
    /// client's MAC address: an offer for a discover, an ack (or nak) for a request.
    pub(crate) fn answer(
        &mut self,
        cfg: &StackConfig,
        payload: &[u8],
    ) -> Option<(Vec<u8>, EthernetAddress)> {
        let packet = DhcpPacket::new_checked(payload).ok()?;
        let req = DhcpRepr::parse(&packet).ok()?;
        let mac = req.client_hardware_address;
        let lease = self.lease(cfg, mac)?;
        let kind = match req.message_type {
            DhcpMessageType::Discover => DhcpMessageType::Offer,
            DhcpMessageType::Request => {
                let asked = req
                    .requested_ip
                    .or_else(|| (!req.client_ip.is_unspecified()).then_some(req.client_ip));
                if asked.is_some_and(|a| a != lease) {
                    DhcpMessageType::Nak
                } else {
                    DhcpMessageType::Ack
                }
            }
            _ => return None,
        };
        let gw = cfg.gateway();
        let mask = Ipv4Addr::from(u32::MAX << (32 - u32::from(cfg.cidr.1)));
        let dns = cfg.dns().octets();
        let dns_option = [DhcpOption {
            kind: OPTION_DNS,
            data: &dns,
        }];
        let nak = kind == DhcpMessageType::Nak;
        let reply = DhcpRepr {
            message_type: kind,
            transaction_id: req.transaction_id,
            secs: 0,
            client_hardware_address: mac,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: if nak { Ipv4Addr::UNSPECIFIED } else { lease },
            server_ip: gw,
            router: (!nak).then_some(gw),
            subnet_mask: (!nak).then_some(mask),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(gw),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: (!nak).then_some(LEASE_SECS),
            renew_duration: None,
            rebind_duration: None,
            additional_options: if nak || cfg.disable_dns {
                &[]
            } else {
                &dns_option
            },
        };
        let mut buf = vec![0u8; reply.buffer_len()];
        reply.emit(&mut DhcpPacket::new_unchecked(&mut buf)).ok()?;
        Some((buf, mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_message(
        kind: DhcpMessageType,
        mac: EthernetAddress,
        requested: Option<Ipv4Addr>,
    ) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: 0x1234_5678,
            secs: 0,
            client_hardware_address: mac,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: requested,
            client_identifier: None,
            server_identifier: None,
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut buf)).unwrap();
        buf
    }

    /// The reply's message type, offered address and DNS servers.
    fn parse(
        buf: &[u8],
    ) -> (
        DhcpMessageType,
        Ipv4Addr,
        Option<Vec<Ipv4Addr>>,
        DhcpRepr<'static>,
    ) {
        let packet = DhcpPacket::new_checked(buf).unwrap();
        let r = DhcpRepr::parse(&packet).unwrap();
        let dns = r.dns_servers.as_ref().map(|v| v.to_vec());
        let owned = DhcpRepr {
            parameter_request_list: None,
            additional_options: &[],
            dns_servers: None,
            ..r
        };
        (owned.message_type, owned.your_ip, dns, owned)
    }

    #[test]
    fn leases_start_at_dot15_per_mac_address() {
        let cfg = StackConfig::default();
        let mut d = Dhcp::default();
        let a = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let b = EthernetAddress([2, 0, 0, 0, 0, 2]);
        let (offer, mac) = d
            .answer(&cfg, &client_message(DhcpMessageType::Discover, a, None))
            .unwrap();
        assert_eq!(mac, a);
        let (kind, _, dns, offer) = parse(&offer);
        assert_eq!(kind, DhcpMessageType::Offer);
        assert_eq!(offer.transaction_id, 0x1234_5678);
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(offer.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(offer.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(offer.server_identifier, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(dns, Some(vec![Ipv4Addr::new(10, 0, 2, 3)]));
        let req = client_message(
            DhcpMessageType::Request,
            a,
            Some(Ipv4Addr::new(10, 0, 2, 15)),
        );
        let (ack, _) = d.answer(&cfg, &req).unwrap();
        assert_eq!(parse(&ack).0, DhcpMessageType::Ack);
        let (offer_b, _) = d
            .answer(&cfg, &client_message(DhcpMessageType::Discover, b, None))
            .unwrap();
        assert_eq!(parse(&offer_b).1, Ipv4Addr::new(10, 0, 2, 16));
        let wrong = client_message(
            DhcpMessageType::Request,
            b,
            Some(Ipv4Addr::new(10, 0, 2, 15)),
        );
        let (nak, _) = d.answer(&cfg, &wrong).unwrap();
        assert_eq!(parse(&nak).0, DhcpMessageType::Nak);
    }
}
