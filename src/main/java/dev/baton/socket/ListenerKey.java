package dev.baton.socket;

import dev.baton.config.Addresses;
import dev.baton.config.Protocol;
import dev.baton.config.ProxyConfig;

import java.net.Inet6Address;
import java.net.InetSocketAddress;

/**
 * A listening socket's identity: what the configuration, the registry and a handoff agree on.
 * Besides protocol and address it holds what makes two sockets on one address different: the
 * network namespace it lives in ({@code netns}, the namespace's inode; 0 for baton's own) and,
 * for the IPv6 wildcard "[::]" only, whether it takes IPv6 clients alone ({@code ipv6Only}).
 */
public record ListenerKey(Protocol protocol, InetSocketAddress address, boolean ipv6Only, long netns) {
    public ListenerKey {
        // IPV6_V6ONLY changes which clients a socket gets only on the IPv6 wildcard.
        ipv6Only = ipv6Only && isIpv6Wildcard(address);
    }

    /** A dual-stack (for "[::]") listener in baton's own namespace. */
    public ListenerKey(Protocol protocol, InetSocketAddress address) {
        this(protocol, address, false, 0);
    }

    /** The key of one listen address of a configured proxy. */
    public static ListenerKey of(ProxyConfig p, InetSocketAddress address) {
        return new ListenerKey(p.protocol(), address, p.ipv6Only(),
                p.listenNetns() == null ? 0 : p.listenNetns().inode());
    }

    static boolean isIpv6Wildcard(InetSocketAddress a) {
        return a.getAddress() instanceof Inet6Address && a.getAddress().isAnyLocalAddress();
    }

    // equals and hashCode by hand: a record's generated ones are bootstrapped through method
    // handles on first use, some 20 ms of every start (docs/jvm.md, "Start time").
    @Override
    public boolean equals(Object o) {
        return o instanceof ListenerKey k && protocol == k.protocol && address.equals(k.address)
                && ipv6Only == k.ipv6Only && netns == k.netns;
    }

    @Override
    public int hashCode() {
        return ((protocol.hashCode() * 31 + address.hashCode()) * 31 + Boolean.hashCode(ipv6Only)) * 31
                + Long.hashCode(netns);
    }

    @Override
    public String toString() {
        return protocol.label() + " " + Addresses.format(address) + (ipv6Only ? " (IPv6 only)" : "")
                + (netns != 0 ? " in net:[" + netns + "]" : "");
    }

    /**
     * The form used on the wire between predecessor and successor: "tcp:ADDR", followed by
     * ",v6only" and ",netns=INODE" where they apply.
     */
    public String wireName() {
        return protocol.label() + ":" + Addresses.format(address) + (ipv6Only ? ",v6only" : "")
                + (netns != 0 ? ",netns=" + netns : "");
    }

    public static ListenerKey parseWireName(String name) {
        int colon = name.indexOf(':');
        if (colon < 0) {
            throw new IllegalArgumentException("not a listener name: " + name);
        }
        String proto = name.substring(0, colon);
        Protocol p = proto.equals("tcp") ? Protocol.TCP : proto.equals("udp") ? Protocol.UDP : null;
        if (p == null) {
            throw new IllegalArgumentException("not a listener name: " + name);
        }
        String[] parts = name.substring(colon + 1).split(",");
        boolean ipv6Only = false;
        long netns = 0;
        for (int i = 1; i < parts.length; i++) {
            if (parts[i].equals("v6only")) {
                ipv6Only = true;
            } else if (parts[i].startsWith("netns=")) {
                netns = Long.parseLong(parts[i].substring("netns=".length()));
            } else {
                throw new IllegalArgumentException("not a listener name: " + name);
            }
        }
        return new ListenerKey(p, Addresses.parse(parts[0], true), ipv6Only, netns);
    }
}
