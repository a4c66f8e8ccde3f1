package genai_audit.esnode;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.transport.TransportAddress;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.node.ClasspathNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A single-node Elasticsearch server for tests and local use, run from the Maven Central artifacts.
 *
 * <pre>
 * java -cp ... genai_audit.esnode.EsNode --home DIR [--port N] [--host ADDR]
 *      [--address-file FILE] [--exit-on-stdin-close]
 * </pre>
 *
 * <p>{@code --home} holds the data and logs ({@code path.home}); {@code --port 0} (the default)
 * takes a free port. When the node is serving, its HTTP address ({@code http://host:port}) is
 * written atomically to the address file and printed as {@code READY http://host:port}. SIGTERM
 * (or, with {@code --exit-on-stdin-close}, end of standard input) closes the node cleanly.
 *
 * <p>Only the server and the Netty transport exist on Maven Central: there is no x-pack, no
 * scripting, no {@code GET /}; readiness is {@code GET /_cluster/health}.
 */
public final class EsNode {
    private static final long CLOSE_TIMEOUT_SECONDS = 30;

    private EsNode() {}

    public static void main(String[] args) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("es-node: " + e.getMessage());
            System.err.println(Options.USAGE);
            System.exit(2);
            return;
        }
        Settings settings = options.settings();
        // log4j configures itself from log4j2.properties on the class path (console, INFO)
        LogConfigurator.configureESLogging();

        Node node;
        try {
            node = new ClasspathNode(settings, List.of(Netty4Plugin.class));
            node.start();
        } catch (Exception | LinkageError e) {
            System.err.println("es-node: the node did not start: " + e);
            e.printStackTrace(System.err);
            System.exit(1);
            return;
        }

        CountDownLatch closed = new CountDownLatch(1);
        Node started = node;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            close(started);
            closed.countDown();
        }, "es-node-shutdown"));

        try {
            String url = httpUrl(node);
            if (options.addressFile != null) {
                writeAtomically(options.addressFile, url + "\n");
            }
            System.out.println("READY " + url);
            System.out.flush();
        } catch (IOException | RuntimeException e) {
            System.err.println("es-node: started but cannot publish its address: " + e);
            System.exit(1);
        }

        if (options.exitOnStdinClose) {
            Thread watcher = new Thread(() -> {
                drain(System.in);
                System.exit(0);
            }, "es-node-stdin");
            watcher.setDaemon(true);
            watcher.start();
        }
        try {
            closed.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String httpUrl(Node node) {
        HttpServerTransport http = node.injector().getInstance(HttpServerTransport.class);
        TransportAddress address = http.boundAddress().publishAddress();
        String host = address.getAddress();
        if (host.indexOf(':') >= 0) {
            host = "[" + host + "]";
        }
        return "http://" + host + ":" + address.getPort();
    }

    private static void close(Node node) {
        try {
            node.close();
            if (!node.awaitClose(CLOSE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                System.err.println("es-node: the node did not close within " + CLOSE_TIMEOUT_SECONDS + " s");
            }
        } catch (IOException | RuntimeException e) {
            System.err.println("es-node: error while closing: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        System.out.println("CLOSED");
        System.out.flush();
    }

    private static void drain(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // input is ignored; only its end matters
            }
        } catch (IOException e) {
            // a broken pipe is an end of input too
        }
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path partial = Files.createTempFile(parent, file.getFileName().toString(), ".partial");
        Files.writeString(partial, text, StandardCharsets.UTF_8);
        Files.move(partial, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Command-line options. */
    static final class Options {
        static final String USAGE =
            "usage: EsNode --home DIR [--port N] [--host ADDR] [--address-file FILE] [--exit-on-stdin-close]";

        Path home;
        int port;
        String host = "127.0.0.1";
        Path addressFile;
        boolean exitOnStdinClose;

        static Options parse(String[] args) {
            Options options = new Options();
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                switch (arg) {
                    case "--home" -> options.home = Path.of(value(args, ++i, arg)).toAbsolutePath();
                    case "--port" -> options.port = port(value(args, ++i, arg));
                    case "--host" -> options.host = value(args, ++i, arg);
                    case "--address-file" -> options.addressFile = Path.of(value(args, ++i, arg)).toAbsolutePath();
                    case "--exit-on-stdin-close" -> options.exitOnStdinClose = true;
                    default -> throw new IllegalArgumentException("unknown argument " + arg);
                }
            }
            if (options.home == null) {
                throw new IllegalArgumentException("--home is required");
            }
            return options;
        }

        private static String value(String[] args, int index, String name) {
            if (index >= args.length) {
                throw new IllegalArgumentException(name + " needs a value");
            }
            return args[index];
        }

        private static int port(String text) {
            try {
                int port = Integer.parseInt(text);
                if (port < 0 || port > 65535) {
                    throw new IllegalArgumentException("--port must be 0..65535, got " + text);
                }
                return port;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--port must be a number, got " + text);
            }
        }

        Settings settings() {
            return Settings.builder()
                .put("cluster.name", "genai-audit-local")
                .put("node.name", "genai-audit-local")
                .put("path.home", home.toString())
                .put("discovery.type", "single-node")
                .put("network.host", host)
                .put("http.port", Integer.toString(port))
                .put("transport.port", "0")
                .put("node.processors", 1)
                .put("indices.breaker.total.use_real_memory", false)
                // a nearly full disk must not turn the test node read-only
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .build();
        }
    }
}
