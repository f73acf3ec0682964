package dev.baton.config;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/** Parses "host:port" and "[v6]:port" as written in the configuration. */
public final class Addresses {
    private Addresses() {
    }

    /**
     * @param literalOnly true for listen addresses: the host must be an IP literal, never a name
     * @throws IllegalArgumentException with a message fit for `FILE:LINE: key: message`
     */
    public static InetSocketAddress parse(String text, boolean literalOnly) {
        String s = text.trim();
        String host;
        String port;
        if (s.startsWith("[")) {
            int close = s.indexOf(']');
            if (close < 0 || close + 1 >= s.length() || s.charAt(close + 1) != ':') {
                throw new IllegalArgumentException("'" + text + "' is not an address: write IPv6 as [addr]:port");
            }
            host = s.substring(1, close);
            port = s.substring(close + 2);
        } else {
            int colon = s.lastIndexOf(':');
            if (colon <= 0) {
                throw new IllegalArgumentException("'" + text + "' is not an address: expected host:port");
            }
            host = s.substring(0, colon);
            port = s.substring(colon + 1);
            if (host.indexOf(':') >= 0) {
                throw new IllegalArgumentException("'" + text + "' is not an address: write IPv6 as [addr]:port");
            }
        }
        int p;
        try {
            p = Integer.parseInt(port);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' has no valid port ('" + port + "')");
        }
        if (p < 1 || p > 65535) {
            throw new IllegalArgumentException("'" + text + "': port " + p + " is out of range 1-65535");
        }
        if (host.equals("*")) {
            host = "0.0.0.0";
        }
        boolean literal = isIpLiteral(host);
        if (literalOnly && !literal) {
            throw new IllegalArgumentException("'" + text + "': listen host must be an IP address, not a name");
        }
        try {
            return new InetSocketAddress(InetAddress.getByName(host), p);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("'" + text + "': cannot resolve host '" + host + "'");
        }
    }

    /**
     * "host:port" or "host:first-last" (a port range, both ends included) as the addresses it names,
     * in port order.
     */
    public static java.util.List<InetSocketAddress> parseRange(String text, boolean literalOnly) {
        String s = text.trim();
        int colon = s.lastIndexOf(':');
        int dash = s.lastIndexOf('-');
        if (colon < 0 || dash < colon) {
            return java.util.List.of(parse(text, literalOnly));
        }
        InetSocketAddress first = parse(s.substring(0, dash), literalOnly);
        int last;
        try {
            last = Integer.parseInt(s.substring(dash + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' has no valid port range");
        }
        if (last < first.getPort() || last > 65535) {
            throw new IllegalArgumentException("'" + text + "': port range " + first.getPort() + "-" + last
                    + " is empty or beyond 65535");
        }
        java.util.List<InetSocketAddress> out = new java.util.ArrayList<>(last - first.getPort() + 1);
        for (int p = first.getPort(); p <= last; p++) {
            out.add(new InetSocketAddress(first.getAddress(), p));
        }
        return out;
    }

    static boolean isIpLiteral(String host) {
        if (host.isEmpty()) {
            return false;
        }
        if (host.indexOf(':') >= 0) {
            return host.chars().allMatch(c -> Character.digit(c, 16) >= 0 || c == ':' || c == '.' || c == '%');
        }
        String[] parts = host.split("\\.", -1);
        if (parts.length != 4) {
            return false;
        }
        for (String part : parts) {
            if (part.isEmpty() || part.length() > 3 || !part.chars().allMatch(Character::isDigit)
                    || Integer.parseInt(part) > 255) {
                return false;
            }
        }
        return true;
    }

    /** The address as the configuration would write it: 1.2.3.4:80 or [::1]:80. */
    public static String format(InetSocketAddress a) {
        String host = a.getAddress() != null ? a.getAddress().getHostAddress() : a.getHostString();
        int pct = host.indexOf('%');
        if (pct >= 0) {
            host = host.substring(0, pct);
        }
        if (host.indexOf(':') >= 0) {
            host = "[" + compressV6(host) + "]";
        }
        return host + ":" + a.getPort();
    }

    private static String compressV6(String host) {
        return host.equals("0:0:0:0:0:0:0:0") ? "::" : host.equals("0:0:0:0:0:0:0:1") ? "::1" : host;
    }
}
