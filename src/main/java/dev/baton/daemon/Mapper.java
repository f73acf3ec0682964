package dev.baton.daemon;

import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigValueFactory;
import dev.baton.config.Addresses;
import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.config.Protocol;
import dev.baton.config.ProxyConfig;
import dev.baton.config.RuntimeMappings;
import dev.baton.socket.ListenException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * Runtime port mappings: `baton map add|rm|ls` as they arrive on the control socket. A change is
 * checked like a configuration, applied to the running daemon like a reload (only the listen
 * addresses that come or go are touched) and saved to the mappings file; a refused request leaves
 * both as they were. Runs on the daemon's lifecycle thread, one request at a time.
 */
public final class Mapper {
    private static final Logger log = LoggerFactory.getLogger(Mapper.class);
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._:\\[\\]-]{1,200}");
    static final String USAGE = "usage: map add tcp|udp LISTEN UPSTREAM[,UPSTREAM...] [NAME] | map rm NAME"
            + " | map rm tcp|udp LISTEN | map ls";

    private final Daemon daemon;

    public Mapper(Daemon daemon) {
        this.daemon = daemon;
    }

    /** Answers one control command line starting with "map": "OK ...", "FAIL reason" or the table. */
    public String handle(String line) {
        String[] w = line.trim().split("\\s+");
        if (w.length >= 5 && w.length <= 6 && w[1].equals("add")) {
            return add(w[2], w[3], w[4], w.length == 6 ? w[5] : null);
        }
        if (w.length == 3 && w[1].equals("rm")) {
            return remove(w[2]);
        }
        if (w.length == 4 && w[1].equals("rm")) {
            return remove(w[2], w[3]);
        }
        if (w.length == 2 && w[1].equals("ls")) {
            return list();
        }
        return fail(USAGE);
    }

    String add(String protocol, String listen, String upstreams, String name) {
        if (!protocol.equals("tcp") && !protocol.equals("udp")) {
            return fail("protocol '" + protocol + "' is not one of tcp, udp");
        }
        List<String> listenList = List.of(listen.split(","));
        List<String> upstreamList = List.of(upstreams.split(","));
        if (name == null) {
            try {
                name = defaultName(protocol, listenList.get(0));
            } catch (IllegalArgumentException e) {
                return fail(e.getMessage());
            }
        } else if (!NAME.matcher(name).matches()) {
            return fail("name '" + name + "': use letters, digits and . _ - : [ ] (at most 200)");
        }
        BatonConfig current = daemon.config();
        RuntimeMappings runtime = current.runtime();
        if (runtime.entries().containsKey(name)) {
            return fail("a runtime mapping named '" + name + "' exists already (" + describe(runtime, name) + ")");
        }
        long start = System.nanoTime();
        Map<String, Object> block = new LinkedHashMap<>();
        block.put("protocol", protocol);
        block.put("listen", listenList);
        block.put("upstreams", upstreamList);
        Map<String, ConfigObject> entries = new LinkedHashMap<>(runtime.entries());
        entries.put(name, ConfigValueFactory.fromMap(block));
        String text = RuntimeMappings.render(entries);
        BatonConfig next;
        try {
            next = ConfigLoader.withMappings(current, text);
        } catch (ConfigException e) {
            return fail(reason(e, name));
        }
        try {
            daemon.remap(next);
        } catch (ListenException e) {
            return fail(e.getMessage());
        }
        try {
            RuntimeMappings.write(runtime.file(), text);
        } catch (IOException e) {
            undo(current);
            return fail("cannot save " + runtime.file() + " (" + e.getMessage() + "); the mapping was not added");
        }
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        int proxies = count(next.runtime(), name);
        int addresses = listenAddresses(next, name).size();
        log.info("map add {}: {} {} -> {}: {} prox{}, {} listen address{} checked, opened and saved in {} ms", name, protocol,
                listen, upstreams, proxies, proxies == 1 ? "y" : "ies", addresses, addresses == 1 ? "" : "es", ms);
        return "OK added " + name + ": " + protocol + " " + listen + " -> " + upstreams
                + (proxies > 1 ? " (" + proxies + " ports)" : "") + "\n";
    }

    String remove(String name) {
        BatonConfig current = daemon.config();
        RuntimeMappings runtime = current.runtime();
        if (!runtime.entries().containsKey(name)) {
            String mapping = runtime.proxies().get(name);
            if (mapping != null) {
                return fail("'" + name + "' is one port of the runtime mapping '" + mapping
                        + "'; remove the whole mapping: map rm " + mapping);
            }
            if (current.proxies().containsKey(name) || runtime.configNames().contains(name)) {
                return fail("'" + name + "' is a proxy of the configuration file " + current.source()
                        + "; edit that file and reload");
            }
            return fail("no runtime mapping named '" + name + "'");
        }
        long start = System.nanoTime();
        Map<String, ConfigObject> entries = new LinkedHashMap<>(runtime.entries());
        entries.remove(name);
        String text = RuntimeMappings.render(entries);
        BatonConfig next;
        try {
            next = ConfigLoader.withMappings(current, text);
        } catch (ConfigException e) {
            return fail(reason(e, name));
        }
        // Saved first: closing listeners cannot fail, re-opening them could.
        try {
            RuntimeMappings.write(runtime.file(), text);
        } catch (IOException e) {
            return fail("cannot save " + runtime.file() + " (" + e.getMessage() + "); the mapping stays");
        }
        int addresses = listenAddresses(current, name).size();
        try {
            daemon.remap(next);
        } catch (ListenException | RuntimeException e) {
            try {
                RuntimeMappings.write(runtime.file(), RuntimeMappings.render(runtime.entries()));
            } catch (IOException ignored) {
                // reported below; the running set is unchanged either way
            }
            return fail(e.getMessage());
        }
        log.info("map rm {}: {} listen address{} closed and saved in {} ms; open connections continue until they end",
                name, addresses, addresses == 1 ? "" : "es", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        return "OK removed " + name + " (" + addresses + " listen address" + (addresses == 1 ? "" : "es")
                + " closed)\n";
    }

    /** `map rm tcp|udp LISTEN`: the runtime mapping whose listen addresses are exactly these. */
    String remove(String protocol, String listen) {
        Protocol p = protocol.equals("tcp") ? Protocol.TCP : protocol.equals("udp") ? Protocol.UDP : null;
        if (p == null) {
            return fail("protocol '" + protocol + "' is not one of tcp, udp");
        }
        Set<InetSocketAddress> wanted = new HashSet<>();
        try {
            for (String s : listen.split(",")) {
                wanted.addAll(Addresses.parseRange(s, true));
            }
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        BatonConfig current = daemon.config();
        for (String name : current.runtime().entries().keySet()) {
            Set<InetSocketAddress> has = listenAddresses(current, name);
            if (has.equals(wanted) && current.proxies().get(firstProxy(current.runtime(), name)).protocol() == p) {
                return remove(name);
            }
        }
        for (ProxyConfig c : current.proxyList()) {
            if (c.protocol() != p) {
                continue;
            }
            for (InetSocketAddress a : c.listen()) {
                if (wanted.contains(a)) {
                    String mapping = current.runtime().proxies().get(c.name());
                    return fail(protocol + " " + Addresses.format(a) + (mapping != null
                            ? " is part of the runtime mapping '" + mapping + "' (" + describe(current.runtime(), mapping)
                            + "); remove it by name: map rm " + mapping
                            : " belongs to proxy '" + c.name() + "' of the configuration file " + current.source()
                            + "; edit that file and reload"));
                }
            }
        }
        return fail("no runtime mapping listens on " + protocol + " " + listen);
    }

    /** Every proxy, one row each: name, protocol, listen, upstreams, origin (config or runtime). */
    String list() {
        BatonConfig c = daemon.config();
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"NAME", "PROTO", "LISTEN", "UPSTREAMS", "ORIGIN"});
        for (ProxyConfig p : c.proxyList()) {
            rows.add(new String[] {p.name(), p.protocol().label(), join(p.listen()), join(p.upstreams()),
                    c.runtime().proxies().containsKey(p.name()) ? "runtime" : "config"});
        }
        int[] width = new int[5];
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                width[i] = Math.max(width[i], r[i].length());
            }
        }
        StringBuilder b = new StringBuilder();
        for (String[] r : rows) {
            for (int i = 0; i < r.length - 1; i++) {
                b.append(r[i]).append(" ".repeat(width[i] - r[i].length() + 2));
            }
            b.append(r[r.length - 1]).append('\n');
        }
        return b.toString();
    }

    /** "tcp-8080" for 0.0.0.0:8080, "udp-8000-8099" for a range, "tcp-127.0.0.1-8080", "tcp-[::]-8080". */
    static String defaultName(String protocol, String listen) {
        List<InetSocketAddress> range = Addresses.parseRange(listen, true);
        InetSocketAddress first = range.get(0);
        String host = Addresses.format(first);
        host = host.substring(0, host.lastIndexOf(':'));
        String ports = first.getPort() + (range.size() > 1 ? "-" + range.get(range.size() - 1).getPort() : "");
        return protocol + "-" + (host.equals("0.0.0.0") ? "" : host + "-") + ports;
    }

    private void undo(BatonConfig previous) {
        try {
            daemon.remap(previous); // only closes what was just opened
        } catch (ListenException e) {
            log.error("map: could not return to the previous mappings: {}", e.getMessage());
        }
    }

    /**
     * The first error without its file and line (the file is not written yet); without its key
     * path too when that is the new mapping's own.
     */
    private static String reason(ConfigException e, String name) {
        String first = e.errors().get(0);
        int a = first.indexOf(": baton.");
        int b = a < 0 ? -1 : first.indexOf(": ", a + 2);
        if (b < 0) {
            return first;
        }
        String path = first.substring(a + 2, b);
        String prefix = "baton.proxies." + (name.matches("[A-Za-z0-9_-]+") ? name : "\"" + name + "\"");
        return path.equals(prefix) || path.startsWith(prefix + ".") ? first.substring(b + 2)
                : first.substring(a + 2);
    }

    private static String describe(RuntimeMappings runtime, String name) {
        return runtime.entries().get(name).render(com.typesafe.config.ConfigRenderOptions.concise().setJson(false));
    }

    private static int count(RuntimeMappings runtime, String name) {
        int n = 0;
        for (String mapping : runtime.proxies().values()) {
            if (mapping.equals(name)) {
                n++;
            }
        }
        return n;
    }

    private static String firstProxy(RuntimeMappings runtime, String name) {
        for (Map.Entry<String, String> e : runtime.proxies().entrySet()) {
            if (e.getValue().equals(name)) {
                return e.getKey();
            }
        }
        return null;
    }

    private static Set<InetSocketAddress> listenAddresses(BatonConfig c, String mapping) {
        Set<InetSocketAddress> out = new HashSet<>();
        for (Map.Entry<String, String> e : c.runtime().proxies().entrySet()) {
            if (e.getValue().equals(mapping)) {
                out.addAll(c.proxies().get(e.getKey()).listen());
            }
        }
        return out;
    }

    private static String join(List<InetSocketAddress> addresses) {
        List<String> s = new ArrayList<>();
        for (InetSocketAddress a : addresses) {
            s.add(Addresses.format(a));
        }
        return String.join(",", s);
    }

    private static String fail(String reason) {
        return "FAIL " + reason + "\n";
    }
}
