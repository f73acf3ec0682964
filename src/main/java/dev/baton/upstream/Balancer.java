package dev.baton.upstream;

import dev.baton.config.Balance;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Picks the upstream for a new connection. The first attempt follows the configured policy; when
 * a connect fails, the caller asks again with the attempt number and gets the next upstream in
 * order, so each upstream is tried at most once.
 */
public final class Balancer {
    private final Balance balance;
    private final Upstream[] upstreams;
    private final AtomicInteger next = new AtomicInteger();

    public Balancer(Balance balance, List<Upstream> upstreams) {
        if (upstreams.isEmpty()) {
            throw new IllegalArgumentException("no upstreams");
        }
        this.balance = balance;
        this.upstreams = upstreams.toArray(new Upstream[0]);
    }

    /**
     * A balancer for a (re)loaded configuration. Upstreams whose address stays keep their object,
     * and so the count of connections open to them, which least-conn and random-two rely on.
     */
    public static Balancer of(Balance balance, List<InetSocketAddress> addresses, Balancer previous) {
        java.util.Map<InetSocketAddress, Upstream> known = new java.util.HashMap<>();
        if (previous != null) {
            for (Upstream u : previous.upstreams) {
                known.put(u.address(), u);
            }
        }
        java.util.List<Upstream> ups = new java.util.ArrayList<>();
        for (InetSocketAddress a : addresses) {
            ups.add(known.getOrDefault(a, new Upstream(a)));
        }
        return new Balancer(balance, ups);
    }

    /** The upstream object for an address, if this balancer has one. */
    public Upstream find(InetSocketAddress address) {
        for (Upstream u : upstreams) {
            if (u.address().equals(address)) {
                return u;
            }
        }
        return null;
    }

    public List<Upstream> upstreams() {
        return Arrays.asList(upstreams);
    }

    /** How many upstreams a connection may try before giving up. */
    public int attempts() {
        return upstreams.length;
    }

    /** The index of the first upstream to try for this client. */
    public int first(InetSocketAddress client) {
        int n = upstreams.length;
        if (n == 1) {
            return 0;
        }
        switch (balance) {
            case LEAST_CONN: {
                int best = Math.floorMod(next.getAndIncrement(), n);
                for (int k = 1; k < n; k++) {
                    int i = (best + k) % n;
                    if (upstreams[i].active() < upstreams[best].active()) {
                        best = i;
                    }
                }
                return best;
            }
            case RANDOM_TWO: {
                ThreadLocalRandom r = ThreadLocalRandom.current();
                int a = r.nextInt(n);
                int b = r.nextInt(n - 1);
                if (b >= a) {
                    b++;
                }
                return upstreams[b].active() < upstreams[a].active() ? b : a;
            }
            case SOURCE_HASH:
                return Math.floorMod(hash(client.getAddress()), n);
            case ROUND_ROBIN:
            default:
                return Math.floorMod(next.getAndIncrement(), n);
        }
    }

    /** The upstream for attempt {@code attempt} (0-based) of a connection whose first pick was {@code first}. */
    public Upstream get(int first, int attempt) {
        return upstreams[(first + attempt) % upstreams.length];
    }

    private static int hash(InetAddress address) {
        byte[] b = address.getAddress();
        int h = 0x811c9dc5;
        for (byte x : b) {
            h = (h ^ (x & 0xff)) * 0x01000193;
        }
        return h;
    }
}
