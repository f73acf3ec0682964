package dev.baton.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigList;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigOrigin;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigResolveOptions;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;

import dev.baton.os.NetNamespace;

import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a HOCON file into a validated {@link BatonConfig}. Every problem found is reported, each as
 * {@code FILE:LINE: key.path: message}; nothing half-valid is ever returned.
 */
public final class ConfigLoader {
    /** Keys a proxy block may hold besides the tcp/udp override blocks. */
    private static final Set<String> PROXY_KEYS = Set.of("protocol", "listen", "upstreams", "balance", "tcp", "udp",
            "ipv6-only", "listen-netns", "upstream-netns");
    /** The proxy keys of the client-address settings (read by {@link #proxyProtocol}). */
    private static final Set<String> PROXY_PROTOCOL_KEYS = Set.of("proxy-protocol", "accept-proxy-protocol");

    private final List<String> errors = new ArrayList<>();
    /** Network namespaces opened for this file, by path: one descriptor however many proxies name it. */
    private final Map<String, NetNamespace> namespaces = new HashMap<>();
    private final Path file;
    private ConfigObject referenceBaton;

    private ConfigLoader(Path file) {
        this.file = file;
    }

    public static BatonConfig load(Path file) throws ConfigException {
        return new ConfigLoader(file).load();
    }

    private BatonConfig load() throws ConfigException {
        if (!Files.isRegularFile(file)) {
            throw new ConfigException(List.of(file + ": cannot read: no such file"));
        }
        if (!Files.isReadable(file)) {
            throw new ConfigException(List.of(file + ": cannot read: permission denied"));
        }
        Config reference = ConfigFactory.parseResources(ConfigLoader.class.getClassLoader(), "reference.conf");
        Config user;
        Config merged;
        try {
            ConfigParseOptions options = ConfigParseOptions.defaults().setAllowMissing(false)
                    .setIncluder(new GlobIncluder());
            user = ConfigFactory.parseFile(file.toFile(), options);
            merged = user.withFallback(reference).resolve(ConfigResolveOptions.defaults());
        } catch (com.typesafe.config.ConfigException e) {
            throw new ConfigException(List.of(describe(e)));
        }

        if (user.hasPathOrNull("baton")) {
            ConfigValue batonValue = user.root().get("baton");
            if (batonValue.valueType() != ConfigValueType.OBJECT) {
                throw new ConfigException(List.of(at(batonValue.origin(), "baton", "must be an object")));
            }
            referenceBaton = reference.getObject("baton");
            checkUnknown((ConfigObject) batonValue, referenceBaton, "baton");
        }

        Config baton = merged.getConfig("baton");
        TransportChoice transport = TransportChoice.AUTO;
        String t = string(baton, "transport", "baton.transport");
        if (t != null) {
            transport = TransportChoice.of(t);
            if (transport == null) {
                error(baton, "transport", "baton.transport", "'" + t + "' is not one of auto, io_uring, epoll, nio");
                transport = TransportChoice.AUTO;
            }
        }
        int workers = workers(baton);
        Duration drain = duration(baton, "drain-timeout", "baton.drain-timeout", Duration.ZERO, null);
        Duration upgrade = duration(baton, "upgrade-timeout", "baton.upgrade-timeout", Duration.ofMillis(1), null);

        Config baseTcp = baton.getConfig("tcp");
        Config baseUdp = baton.getConfig("udp");
        // The global blocks are checked once on their own (so an error shows even with no proxies
        // and under its own key); the same value inherited by each proxy is not reported again.
        tcp(baseTcp, "baton.tcp");
        udp(baseUdp, "baton.udp");
        Map<String, ProxyConfig> proxies = new LinkedHashMap<>();
        Map<String, String> listenOwners = new HashMap<>();
        ConfigObject proxiesObject = objectOrError(baton, "proxies", "baton.proxies");
        if (proxiesObject != null) {
            for (Map.Entry<String, ConfigValue> e : proxiesObject.entrySet()) {
                for (ProxyConfig p : proxy(e.getKey(), e.getValue(), baseTcp, baseUdp, listenOwners)) {
                    proxies.put(p.name(), p);
                }
            }
        }
        String control = string(baton, "control-socket", "baton.control-socket");
        Path controlSocket = file.toAbsolutePath().getParent()
                .resolve(control == null ? "/run/baton/baton.sock" : control);
        String state = string(baton, "state-dir", "baton.state-dir");
        Path mappingsFile = file.toAbsolutePath().getParent().resolve(state == null ? "/var/lib/baton" : state)
                .resolve(RuntimeMappings.FILE_NAME);
        RuntimeMappings runtime = runtime(mappingsFile, readMappings(mappingsFile), baton.withoutPath("proxies"),
                proxies, listenOwners, proxiesObject == null ? Set.of() : proxiesObject.keySet());
        if (!errors.isEmpty()) {
            throw new ConfigException(withoutRepeats(errors));
        }
        return new BatonConfig(file, transport, workers, drain, upgrade, controlSocket, proxies, runtime);
    }

    /**
     * {@code current} with its runtime mappings replaced by those of {@code text} (the mappings
     * file as it is about to be written). The configuration file is not read again.
     */
    public static BatonConfig withMappings(BatonConfig current, String text) throws ConfigException {
        RuntimeMappings now = current.runtime();
        ConfigLoader loader = new ConfigLoader(now.file());
        Map<String, ProxyConfig> proxies = new LinkedHashMap<>();
        Map<String, String> listenOwners = new HashMap<>();
        for (ProxyConfig p : current.proxyList()) {
            if (!now.proxies().containsKey(p.name())) {
                proxies.put(p.name(), p);
                for (InetSocketAddress a : p.listen()) {
                    listenOwners.put(p.protocol().label() + " " + Addresses.format(a), p.name());
                }
            }
        }
        ConfigObject entries;
        try {
            entries = loader.mappingEntries(ConfigFactory.parseString(text,
                    ConfigParseOptions.defaults().setOriginDescription(now.file().toString())));
        } catch (com.typesafe.config.ConfigException e) {
            throw new ConfigException(List.of(loader.describe(e)));
        }
        RuntimeMappings runtime = loader.runtime(now.file(), entries, now.base(), proxies, listenOwners,
                now.configNames());
        if (!loader.errors.isEmpty()) {
            throw new ConfigException(withoutRepeats(loader.errors));
        }
        return new BatonConfig(current.source(), current.transport(), current.workers(), current.drainTimeout(),
                current.upgradeTimeout(), current.controlSocket(), proxies, runtime);
    }

    /** The proxy blocks of the mappings file, or null if there is none. */
    private ConfigObject readMappings(Path f) {
        if (!Files.exists(f)) {
            Path dir = f.getParent();
            if (Files.isDirectory(dir) && !Files.isExecutable(dir)) {
                errors.add(dir + ": cannot read: permission denied");
            }
            return null;
        }
        if (!Files.isReadable(f)) {
            errors.add(f + ": cannot read: permission denied");
            return null;
        }
        try {
            return mappingEntries(ConfigFactory.parseFile(f.toFile(),
                    ConfigParseOptions.defaults().setAllowMissing(false)));
        } catch (com.typesafe.config.ConfigException e) {
            errors.add(describe(e));
            return null;
        }
    }

    /** {@code baton.proxies} of a mappings file; any other key there is an error. */
    private ConfigObject mappingEntries(Config c) {
        ConfigObject proxies = null;
        for (Map.Entry<String, ConfigValue> e : c.root().entrySet()) {
            if (e.getKey().equals("baton") && e.getValue() instanceof ConfigObject baton) {
                for (Map.Entry<String, ConfigValue> b : baton.entrySet()) {
                    if (b.getKey().equals("proxies") && b.getValue() instanceof ConfigObject p) {
                        proxies = p;
                    } else {
                        errors.add(at(b.getValue().origin(), "baton." + quoteKey(b.getKey()),
                                "a mappings file holds only baton.proxies { NAME { ... } }"));
                    }
                }
            } else {
                errors.add(at(e.getValue().origin(), quoteKey(e.getKey()),
                        "a mappings file holds only baton.proxies { NAME { ... } }"));
            }
        }
        return proxies;
    }

    /**
     * Adds the runtime mappings to {@code proxies}, checked like the configuration file's own
     * proxies. A mapping may not reuse a proxy name or a listen address of the file: that is an
     * error at the mapping's line, never a silent choice between the two.
     */
    private RuntimeMappings runtime(Path mappingsFile, ConfigObject entries, Config base,
                                    Map<String, ProxyConfig> proxies, Map<String, String> listenOwners,
                                    Set<String> configNames) {
        Map<String, ConfigObject> kept = new LinkedHashMap<>();
        Map<String, String> owners = new LinkedHashMap<>();
        if (entries != null) {
            if (referenceBaton == null) {
                referenceBaton = ConfigFactory.parseResources(ConfigLoader.class.getClassLoader(), "reference.conf")
                        .getObject("baton");
            }
            for (Map.Entry<String, ConfigValue> e : new java.util.TreeMap<>(entries).entrySet()) {
                String name = e.getKey();
                String path = "baton.proxies." + quoteKey(name);
                if (!(e.getValue() instanceof ConfigObject block)) {
                    errors.add(at(e.getValue().origin(), path, "must be an object with protocol, listen and upstreams"));
                    continue;
                }
                checkProxyKeys(block, path);
                if (configNames.contains(name)) {
                    errors.add(at(block.origin(), path, "the configuration file has a proxy named '" + name
                            + "' already"));
                    continue;
                }
                for (ProxyConfig p : proxy(name, block, base.getConfig("tcp"), base.getConfig("udp"), listenOwners)) {
                    if (proxies.containsKey(p.name())) {
                        errors.add(at(block.origin(), path, "the configuration file has a proxy named '" + p.name()
                                + "' already"));
                        continue;
                    }
                    proxies.put(p.name(), p);
                    owners.put(p.name(), name);
                }
                kept.put(name, block);
            }
        }
        return new RuntimeMappings(mappingsFile, kept, owners, configNames, base);
    }

    /**
     * One configured proxy; a proxy whose listen addresses carry port ranges
     * ("0.0.0.0:8000-8099" -> "172.17.0.2:9000-9099") becomes one proxy per port, named name:port.
     */
    private List<ProxyConfig> proxy(String name, ConfigValue value, Config baseTcp, Config baseUdp,
                                    Map<String, String> listenOwners) {
        String path = "baton.proxies." + quoteKey(name);
        if (value.valueType() != ConfigValueType.OBJECT) {
            errors.add(at(value.origin(), path, "must be an object with protocol, listen and upstreams"));
            return List.of();
        }
        ConfigObject obj = (ConfigObject) value;
        Config c = obj.toConfig();
        int before = errors.size();

        Protocol protocol = Protocol.TCP;
        String proto = string(c, "protocol", path + ".protocol");
        if (proto != null) {
            if (proto.equals("tcp")) {
                protocol = Protocol.TCP;
            } else if (proto.equals("udp")) {
                protocol = Protocol.UDP;
            } else {
                error(c, "protocol", path + ".protocol", "'" + proto + "' is not one of tcp, udp");
            }
        }
        List<List<InetSocketAddress>> listenRanges = addresses(c, obj, "listen", path, true);
        List<List<InetSocketAddress>> upstreamRanges = addresses(c, obj, "upstreams", path, false);
        int ports = listenRanges.isEmpty() ? 1 : listenRanges.get(0).size();
        for (List<InetSocketAddress> r : listenRanges) {
            if (r.size() != ports) {
                error(c, "listen", path + ".listen", "every listen port range must have the same length ("
                        + ports + " and " + r.size() + ")");
            }
        }
        for (List<InetSocketAddress> r : upstreamRanges) {
            if (r.size() != 1 && r.size() != ports) {
                error(c, "upstreams", path + ".upstreams", "an upstream port range must be as long as the listen "
                        + "range (" + ports + " ports), not " + r.size());
            }
        }
        List<InetSocketAddress> listen = new ArrayList<>();
        listenRanges.forEach(listen::addAll);
        Balance balance = Balance.ROUND_ROBIN;
        String b = string(c, "balance", path + ".balance");
        if (b != null) {
            balance = Balance.of(b);
            if (balance == null) {
                error(c, "balance", path + ".balance",
                        "'" + b + "' is not one of round-robin, least-conn, random-two, source-hash");
                balance = Balance.ROUND_ROBIN;
            }
        }
        ProxyProtocolSettings proxyProtocol = proxyProtocol(c, path, protocol);
        Config tcpC = override(c, "tcp", path, baseTcp);
        Config udpC = override(c, "udp", path, baseUdp);
        TcpSettings tcp = tcp(tcpC, path + ".tcp");
        UdpSettings udp = udp(udpC, path + ".udp");
        boolean ipv6Only = !c.hasPath("ipv6-only") || bool(c, "ipv6-only", path + ".ipv6-only");
        NetNamespace listenNetns = netns(c, "listen-netns", path);
        NetNamespace upstreamNetns = netns(c, "upstream-netns", path);

        String in = listenNetns == null ? "" : " in " + listenNetns.path();
        String ns = listenNetns == null ? "" : " netns " + listenNetns.inode();
        for (InetSocketAddress a : listen) {
            String owner = listenOwners.putIfAbsent(protocol.label() + " " + Addresses.format(a) + ns, name);
            if (owner != null) {
                error(c, "listen", path + ".listen", protocol.label() + " " + Addresses.format(a) + in
                        + " is already a listen address of proxy '" + owner + "'");
            }
            // "[::]:P" taking IPv4 clients too would share them with an IPv4 listener on P.
            String port = protocol.label() + " " + a.getPort() + ns;
            if (a.getAddress() instanceof Inet4Address) {
                String dual = listenOwners.get("dual " + port);
                if (dual != null) {
                    error(c, "listen", path + ".listen", protocol.label() + " " + Addresses.format(a) + in
                            + ": proxy '" + dual + "' takes IPv4 clients of port " + a.getPort()
                            + " on [::] (ipv6-only = false); set ipv6-only = true there");
                }
                listenOwners.putIfAbsent("ipv4 " + port, name);
            } else if (!ipv6Only && a.getAddress() instanceof Inet6Address && a.getAddress().isAnyLocalAddress()) {
                String v4 = listenOwners.get("ipv4 " + port);
                if (v4 != null) {
                    error(c, "listen", path + ".listen", protocol.label() + " " + Addresses.format(a) + in
                            + " with ipv6-only = false would take the IPv4 clients of proxy '" + v4
                            + "' on port " + a.getPort() + "; set ipv6-only = true");
                }
                listenOwners.putIfAbsent("dual " + port, name);
            }
        }
        if (errors.size() != before) {
            return List.of();
        }
        List<ProxyConfig> out = new ArrayList<>();
        for (int i = 0; i < ports; i++) {
            List<InetSocketAddress> l = new ArrayList<>();
            for (List<InetSocketAddress> r : listenRanges) {
                l.add(r.get(i));
            }
            List<InetSocketAddress> u = new ArrayList<>();
            for (List<InetSocketAddress> r : upstreamRanges) {
                u.add(r.size() == 1 ? r.get(0) : r.get(i));
            }
            String n = ports == 1 ? name : name + ":" + l.get(0).getPort();
            out.add(new ProxyConfig(n, protocol, l, u, balance, tcp, udp, proxyProtocol, ipv6Only, listenNetns,
                    upstreamNetns));
        }
        return out;
    }

    /**
     * A proxy's listen-netns or upstream-netns: the network namespace at that path, opened (and
     * so checked) now; null when unset or when it is baton's own namespace.
     */
    private NetNamespace netns(Config c, String key, String path) {
        String value = string(c, key, path + "." + key);
        if (value == null) {
            return null;
        }
        NetNamespace ns = namespaces.get(value);
        if (ns == null) {
            try {
                ns = NetNamespace.open(Path.of(value));
            } catch (IOException | java.nio.file.InvalidPathException e) {
                error(c, key, path + "." + key, e.getMessage());
                return null;
            }
            namespaces.put(value, ns);
        }
        return ns.isOwn() ? null : ns;
    }

    /** {@code proxy-protocol = off | v1 | v2} and {@code accept-proxy-protocol = [CIDR, ...]} of one proxy. */
    private ProxyProtocolSettings proxyProtocol(Config c, String path, Protocol protocol) {
        ProxyProtocol send = ProxyProtocol.OFF;
        String v = string(c, "proxy-protocol", path + ".proxy-protocol");
        if (v != null) {
            send = ProxyProtocol.of(v);
            if (send == null) {
                error(c, "proxy-protocol", path + ".proxy-protocol", "'" + v + "' is not one of off, v1, v2");
                send = ProxyProtocol.OFF;
            } else if (send == ProxyProtocol.V1 && protocol == Protocol.UDP) {
                error(c, "proxy-protocol", path + ".proxy-protocol", "v1 has no UDP form; use v2 for a udp proxy");
            }
        }
        List<Cidr> accept = new ArrayList<>();
        if (c.hasPath("accept-proxy-protocol")) {
            String full = path + ".accept-proxy-protocol";
            ConfigValue a = c.getValue("accept-proxy-protocol");
            List<ConfigValue> items = new ArrayList<>();
            if (a.valueType() == ConfigValueType.LIST) {
                items.addAll((ConfigList) a);
            } else {
                items.add(a);
            }
            for (ConfigValue item : items) {
                if (item.valueType() != ConfigValueType.STRING) {
                    errors.add(at(item.origin(), full, "expected a network such as \"10.0.0.0/8\", got "
                            + item.valueType().name().toLowerCase()));
                    continue;
                }
                try {
                    accept.add(Cidr.parse((String) item.unwrapped()));
                } catch (IllegalArgumentException e) {
                    errors.add(at(item.origin(), full, e.getMessage()));
                }
            }
            if (!accept.isEmpty() && protocol == Protocol.UDP) {
                errors.add(at(a.origin(), full, "only a tcp proxy can accept PROXY protocol headers"));
            }
        }
        return new ProxyProtocolSettings(send, accept);
    }

    private Config override(Config proxy, String key, String path, Config base) {
        if (!proxy.hasPath(key)) {
            return base;
        }
        ConfigValue v = proxy.getValue(key);
        if (v.valueType() != ConfigValueType.OBJECT) {
            errors.add(at(v.origin(), path + "." + key, "must be an object"));
            return base;
        }
        return ((ConfigObject) v).toConfig().withFallback(base);
    }

    private TcpSettings tcp(Config c, String path) {
        int backlog = integer(c, "backlog", path + ".backlog", 1, 65535);
        boolean nodelay = bool(c, "nodelay", path + ".nodelay");
        Duration connect = duration(c, "connect-timeout", path + ".connect-timeout", Duration.ofMillis(1),
                Duration.ofDays(1));
        Duration idle = duration(c, "idle-timeout", path + ".idle-timeout", Duration.ofSeconds(1), null);
        boolean kaEnabled = bool(c, "keepalive.enabled", path + ".keepalive.enabled");
        Duration kaIdle = duration(c, "keepalive.idle", path + ".keepalive.idle", Duration.ofSeconds(1),
                Duration.ofSeconds(32767));
        Duration kaInterval = duration(c, "keepalive.interval", path + ".keepalive.interval",
                Duration.ofSeconds(1), Duration.ofSeconds(32767));
        int kaCount = integer(c, "keepalive.count", path + ".keepalive.count", 1, 127);
        int fastOpen = integer(c, "fast-open", path + ".fast-open", 0, 65535);
        Duration deferAccept = duration(c, "defer-accept", path + ".defer-accept", Duration.ZERO,
                Duration.ofHours(1));
        boolean freebind = bool(c, "freebind", path + ".freebind");
        boolean splice = bool(c, "splice", path + ".splice");
        return new TcpSettings(backlog, nodelay, connect, idle,
                new Keepalive(kaEnabled, kaIdle, kaInterval, kaCount), fastOpen, deferAccept, freebind, splice);
    }

    private UdpSettings udp(Config c, String path) {
        Duration idle = duration(c, "flow-idle-timeout", path + ".flow-idle-timeout", Duration.ofMillis(100),
                null);
        int maxFlows = integer(c, "max-flows", path + ".max-flows", 1, 10_000_000);
        int receiveBuffer = bytes(c, "receive-buffer", path + ".receive-buffer", 4096, 1 << 30);
        return new UdpSettings(idle, maxFlows, receiveBuffer);
    }

    private int workers(Config baton) {
        ConfigValue v = baton.getValue("workers");
        if (v.valueType() == ConfigValueType.STRING && "auto".equals(v.unwrapped())) {
            return Runtime.getRuntime().availableProcessors();
        }
        if (v.valueType() == ConfigValueType.NUMBER || v.valueType() == ConfigValueType.STRING) {
            try {
                int n = baton.getInt("workers");
                if (n >= 1 && n <= 1024) {
                    return n;
                }
                errors.add(at(v.origin(), "baton.workers", n + " is out of range 1-1024"));
                return 1;
            } catch (com.typesafe.config.ConfigException e) {
                // fall through to the error below
            }
        }
        errors.add(at(v.origin(), "baton.workers", "must be a number or auto"));
        return 1;
    }

    /** Each entry of a listen/upstreams key as its list of addresses (one, or one per port of a range). */
    private List<List<InetSocketAddress>> addresses(Config c, ConfigObject obj, String key, String path,
                                                    boolean listen) {
        String full = path + "." + key;
        List<List<InetSocketAddress>> out = new ArrayList<>();
        if (!c.hasPath(key)) {
            errors.add(at(obj.origin(), full, "is required (\"host:port\" or a list of them)"));
            return out;
        }
        ConfigValue v = c.getValue(key);
        List<ConfigValue> items = new ArrayList<>();
        if (v.valueType() == ConfigValueType.LIST) {
            items.addAll((ConfigList) v);
        } else {
            items.add(v);
        }
        if (items.isEmpty()) {
            errors.add(at(v.origin(), full, "must name at least one address"));
        }
        java.util.Set<InetSocketAddress> seen = new java.util.HashSet<>();
        for (ConfigValue item : items) {
            if (item.valueType() != ConfigValueType.STRING) {
                errors.add(at(item.origin(), full, "expected \"host:port\", got " + item.valueType().name()
                        .toLowerCase()));
                continue;
            }
            try {
                List<InetSocketAddress> range = Addresses.parseRange((String) item.unwrapped(), listen);
                for (InetSocketAddress a : range) {
                    if (!seen.add(a)) {
                        errors.add(at(item.origin(), full, Addresses.format(a) + " is listed twice"));
                    }
                }
                out.add(range);
            } catch (IllegalArgumentException e) {
                errors.add(at(item.origin(), full, e.getMessage()));
            }
        }
        return out;
    }

    private void checkUnknown(ConfigObject user, ConfigObject reference, String path) {
        for (Map.Entry<String, ConfigValue> e : user.entrySet()) {
            String key = e.getKey();
            String full = path + "." + quoteKey(key);
            ConfigValue value = e.getValue();
            if (path.equals("baton.proxies")) {
                if (value instanceof ConfigObject proxy) {
                    checkProxyKeys(proxy, full);
                }
                continue;
            }
            ConfigValue known = reference.get(key);
            if (known == null) {
                errors.add(at(value.origin(), full, "unknown key" + suggestion(key, reference.keySet())));
            } else if (known instanceof ConfigObject ko && value instanceof ConfigObject uo) {
                checkUnknown(uo, ko, full);
            }
        }
    }

    private void checkProxyKeys(ConfigObject proxy, String path) {
        for (Map.Entry<String, ConfigValue> e : proxy.entrySet()) {
            String key = e.getKey();
            String full = path + "." + quoteKey(key);
            if (!PROXY_KEYS.contains(key) && !PROXY_PROTOCOL_KEYS.contains(key)) {
                Set<String> known = new java.util.HashSet<>(PROXY_KEYS);
                known.addAll(PROXY_PROTOCOL_KEYS);
                errors.add(at(e.getValue().origin(), full, "unknown key" + suggestion(key, known)));
            } else if ((key.equals("tcp") || key.equals("udp")) && e.getValue() instanceof ConfigObject o) {
                checkUnknown(o, (ConfigObject) referenceBaton.get(key), full);
            }
        }
    }

    /** Keeps the first error for each place and message ("FILE:LINE: path: message"), whatever the path. */
    private static List<String> withoutRepeats(List<String> all) {
        Set<String> seen = new java.util.HashSet<>();
        List<String> out = new ArrayList<>();
        for (String e : all) {
            int first = e.indexOf(": ");
            int second = first < 0 ? -1 : e.indexOf(": ", first + 2);
            String key = second < 0 ? e : e.substring(0, first) + "|" + e.substring(second + 2);
            if (seen.add(key)) {
                out.add(e);
            }
        }
        return out;
    }

    static String suggestion(String key, Set<String> known) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String k : known) {
            int d = distance(key, k);
            if (d < bestDistance) {
                bestDistance = d;
                best = k;
            }
        }
        if (best != null && bestDistance <= Math.max(2, key.length() / 3)) {
            return " (did you mean '" + best + "'?)";
        }
        return "";
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    private String string(Config c, String key, String path) {
        if (!c.hasPath(key)) {
            return null;
        }
        ConfigValue v = c.getValue(key);
        if (v.valueType() == ConfigValueType.OBJECT || v.valueType() == ConfigValueType.LIST) {
            errors.add(at(v.origin(), path, "must be a string"));
            return null;
        }
        return String.valueOf(v.unwrapped());
    }

    private ConfigObject objectOrError(Config c, String key, String path) {
        ConfigValue v = c.getValue(key);
        if (v.valueType() != ConfigValueType.OBJECT) {
            errors.add(at(v.origin(), path, "must be an object"));
            return null;
        }
        return (ConfigObject) v;
    }

    private int integer(Config c, String key, String path, int min, int max) {
        try {
            int n = c.getInt(key);
            if (n < min || n > max) {
                error(c, key, path, n + " is out of range " + min + "-" + max);
            }
            return n;
        } catch (com.typesafe.config.ConfigException e) {
            error(c, key, path, "must be a whole number");
            return min;
        }
    }

    private int bytes(Config c, String key, String path, int min, int max) {
        try {
            long n = c.getBytes(key);
            if (n < min || n > max) {
                error(c, key, path, n + " bytes is out of range " + min + "-" + max);
            }
            return (int) Math.max(min, Math.min(max, n));
        } catch (com.typesafe.config.ConfigException e) {
            error(c, key, path, "must be a size such as 512KiB or 4MiB");
            return min;
        }
    }

    private boolean bool(Config c, String key, String path) {
        try {
            return c.getBoolean(key);
        } catch (com.typesafe.config.ConfigException e) {
            error(c, key, path, "must be true or false");
            return false;
        }
    }

    private Duration duration(Config c, String key, String path, Duration min, Duration max) {
        try {
            Duration d = c.getDuration(key);
            if (d.compareTo(min) < 0 || (max != null && d.compareTo(max) > 0)) {
                error(c, key, path, c.getValue(key).unwrapped() + " is out of range "
                        + human(min) + "-" + (max == null ? "" : human(max)));
            }
            return d;
        } catch (com.typesafe.config.ConfigException e) {
            error(c, key, path, "must be a duration such as 500ms, 30s, 5m or 1h");
            return min;
        }
    }

    private static String human(Duration d) {
        if (d.isZero()) {
            return "0s";
        }
        if (d.toMillis() % 1000 != 0) {
            return d.toMillis() + "ms";
        }
        return d.getSeconds() + "s";
    }

    private void error(Config c, String key, String path, String message) {
        ConfigOrigin origin = c.hasPathOrNull(key) ? c.getValue(key).origin() : c.origin();
        errors.add(at(origin, path, message));
    }

    private String at(ConfigOrigin origin, String path, String message) {
        return where(origin) + ": " + path + ": " + message;
    }

    private String where(ConfigOrigin origin) {
        if (origin == null) {
            return file.toString();
        }
        String name = origin.filename();
        if (name == null) {
            name = origin.resource() != null ? origin.resource() : origin.description();
        }
        return origin.lineNumber() > 0 ? name + ":" + origin.lineNumber() : name;
    }

    private String describe(com.typesafe.config.ConfigException e) {
        ConfigOrigin origin = e.origin();
        String message = e.getMessage();
        // The library prefixes the message with the origin's description; keep only the reason.
        if (origin != null && message.startsWith(origin.description())) {
            message = message.substring(origin.description().length()).replaceFirst("^:\\s*", "");
        }
        return where(origin) + ": " + message;
    }

    private static String quoteKey(String key) {
        return key.matches("[A-Za-z0-9_-]+") ? key : "\"" + key + "\"";
    }
}
