package dev.baton.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** A blocking TCP server on 127.0.0.1 running a handler per accepted socket on its own thread. */
public final class EchoServer implements AutoCloseable {
    private final ServerSocket server;
    private final Thread acceptor;
    private final List<Socket> accepted = new CopyOnWriteArrayList<>();

    public interface Handler {
        void handle(Socket s) throws IOException;
    }

    public EchoServer(Handler handler) throws IOException {
        server = new ServerSocket(0, 50, Net.LOOPBACK);
        acceptor = new Thread(() -> {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    accepted.add(s);
                    Thread t = new Thread(() -> {
                        try (s) {
                            handler.handle(s);
                        } catch (IOException ignored) {
                            // the test decides what a failure means
                        }
                    }, "server-conn");
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }, "server-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /** Echoes everything, and half-closes its output at EOF. */
    public static EchoServer echo() throws IOException {
        return new EchoServer(s -> {
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            byte[] buf = new byte[65536];
            int n;
            while ((n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
            }
            s.shutdownOutput();
        });
    }

    public int port() {
        return server.getLocalPort();
    }

    public List<Socket> accepted() {
        return accepted;
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket s : accepted) {
            s.close();
        }
    }
}
