package dev.baton.config;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** A network such as 10.0.0.0/8 or fd00::/8; a bare address is that one host. */
public record Cidr(InetAddress network, int prefix) {

    /**
     * @throws IllegalArgumentException with a message fit for `FILE:LINE: key: message`
     */
    public static Cidr parse(String text) {
        String s = text.trim();
        int slash = s.indexOf('/');
        String host = slash < 0 ? s : s.substring(0, slash);
        if (!Addresses.isIpLiteral(host) || host.indexOf('%') >= 0) {
            throw new IllegalArgumentException("'" + text + "' is not a network: expected an IP address or "
                    + "address/prefix such as 10.0.0.0/8");
        }
        InetAddress address;
        try {
            address = InetAddress.getByName(host); // a literal: never a name lookup
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("'" + text + "' is not a network: bad address '" + host + "'");
        }
        int bits = address.getAddress().length * 8;
        int prefix = bits;
        if (slash >= 0) {
            String p = s.substring(slash + 1);
            try {
                prefix = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                prefix = -1;
            }
            if (prefix < 0 || prefix > bits || !p.chars().allMatch(Character::isDigit)) {
                throw new IllegalArgumentException("'" + text + "': prefix length must be 0-" + bits);
            }
        }
        InetAddress network = masked(address, prefix);
        if (!network.equals(address)) {
            throw new IllegalArgumentException("'" + text + "' has bits set beyond its prefix (the network is "
                    + network.getHostAddress() + "/" + prefix + ")");
        }
        return new Cidr(network, prefix);
    }

    /** Whether {@code a} is in this network; an IPv4-mapped IPv6 address counts as its IPv4 address. */
    public boolean contains(InetAddress a) {
        InetAddress plain = unmapped(a);
        if (plain.getAddress().length != network.getAddress().length) {
            return false;
        }
        return masked(plain, prefix).equals(network);
    }

    /** ::ffff:a.b.c.d as a.b.c.d; any other address as it is. */
    public static InetAddress unmapped(InetAddress a) {
        if (a instanceof Inet6Address) {
            byte[] b = a.getAddress();
            for (int i = 0; i < 10; i++) {
                if (b[i] != 0) {
                    return a;
                }
            }
            if (b[10] == (byte) 0xff && b[11] == (byte) 0xff) {
                try {
                    return Inet4Address.getByAddress(new byte[] {b[12], b[13], b[14], b[15]});
                } catch (UnknownHostException e) {
                    throw new IllegalStateException(e); // four bytes are always an address
                }
            }
        }
        return a;
    }

    private static InetAddress masked(InetAddress a, int prefix) {
        byte[] b = a.getAddress();
        for (int i = 0; i < b.length; i++) {
            int keep = Math.max(0, Math.min(8, prefix - i * 8));
            b[i] &= (byte) (0xff << (8 - keep));
        }
        try {
            return InetAddress.getByAddress(b);
        } catch (UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public String toString() {
        return network.getHostAddress() + "/" + prefix;
    }
}
