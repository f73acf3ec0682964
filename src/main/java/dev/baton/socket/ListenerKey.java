package dev.baton.socket;

import dev.baton.config.Addresses;
import dev.baton.config.Protocol;

import java.net.InetSocketAddress;

/** A listen address of one protocol: what the configuration, the registry and a handoff agree on. */
public record ListenerKey(Protocol protocol, InetSocketAddress address) {
    @Override
    public String toString() {
        return protocol.label() + " " + Addresses.format(address);
    }

    /** The form used on the wire between predecessor and successor, and in LISTEN_FDNAMES. */
    public String wireName() {
        return protocol.label() + ":" + Addresses.format(address);
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
        return new ListenerKey(p, Addresses.parse(name.substring(colon + 1), true));
    }
}
