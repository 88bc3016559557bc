// JolokiaApp: a small JVM for tests/integration/jmx_from_jolokia.sh. It serves Debian's
// Jolokia (libjolokia-core-java: the protocol handler and the JMX backend, no servlet
// container) over the JDK's own HTTP server on 127.0.0.1:<port>/jolokia, so Vigil reads
// the real platform MBeans of this JVM (memory, garbage collectors, threads, ...).
//
// It also registers one MBean with fixed values, vigil.test:type=Demo,name=fixed
// (Count 42, Ratio 0.5, Enabled true, Label "text", Usage {used 1024, max 4096}), so the
// test can check exact conversions, and keeps allocating short-lived garbage so the
// young-generation collector runs and its counts grow.
//
// Usage: java -cp <dir>:<jolokia-core.jar>:<json-simple.jar> JolokiaApp <port>
// Prints "listening <port>" once it serves; ends on SIGTERM.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import javax.management.ObjectName;
import javax.management.openmbean.CompositeData;
import javax.management.openmbean.CompositeDataSupport;
import javax.management.openmbean.CompositeType;
import javax.management.openmbean.OpenDataException;
import javax.management.openmbean.OpenType;
import javax.management.openmbean.SimpleType;
import org.jolokia.backend.BackendManager;
import org.jolokia.config.ConfigKey;
import org.jolokia.config.Configuration;
import org.jolokia.http.HttpRequestHandler;
import org.jolokia.restrictor.AllowAllRestrictor;
import org.jolokia.util.LogHandler;
import org.json.simple.JSONAware;

public class JolokiaApp {
    public interface DemoMBean {
        long getCount();
        double getRatio();
        boolean isEnabled();
        String getLabel();
        CompositeData getUsage();
    }

    public static class Demo implements DemoMBean {
        public long getCount() { return 42; }
        public double getRatio() { return 0.5; }
        public boolean isEnabled() { return true; }
        public String getLabel() { return "text"; }
        public CompositeData getUsage() {
            try {
                CompositeType t = new CompositeType("Usage", "usage", new String[] {"used", "max"},
                        new String[] {"used bytes", "max bytes"},
                        new OpenType<?>[] {SimpleType.LONG, SimpleType.LONG});
                return new CompositeDataSupport(t, new String[] {"used", "max"},
                        new Object[] {1024L, 4096L});
            } catch (OpenDataException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    static volatile Object sink;

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        LogHandler log = new LogHandler() {
            public void debug(String m) {}
            public void info(String m) { System.err.println("jolokia: " + m); }
            public void error(String m, Throwable t) { System.err.println("jolokia error: " + m); }
        };
        Configuration config = new Configuration(ConfigKey.AGENT_ID, "vigil-test");
        BackendManager backend = new BackendManager(config, log, new AllowAllRestrictor());
        HttpRequestHandler handler = new HttpRequestHandler(config, backend, log);

        ManagementFactory.getPlatformMBeanServer().registerMBean(new Demo(),
                new ObjectName("vigil.test:type=Demo,name=fixed"));

        HttpServer server = HttpServer.create(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 16);
        server.createContext("/jolokia", ex -> serve(handler, ex));
        server.setExecutor(Executors.newFixedThreadPool(2));
        server.start();

        Thread garbage = new Thread(() -> {
            while (true) {
                for (int i = 0; i < 2000; i++)
                    sink = new byte[4096];
                try { Thread.sleep(5); } catch (InterruptedException e) { return; }
            }
        }, "garbage");
        garbage.setDaemon(true);
        garbage.start();
        System.gc();
        System.out.println("listening " + port);
        System.out.flush();
    }

    static void serve(HttpRequestHandler handler, HttpExchange ex) {
        JSONAware json;
        try {
            String uri = ex.getRequestURI().toString();
            String path = ex.getRequestURI().getPath().substring("/jolokia".length());
            Map<String, String[]> params = new HashMap<>();
            String q = ex.getRequestURI().getRawQuery();
            if (q != null)
                for (String kv : q.split("&")) {
                    int eq = kv.indexOf('=');
                    String k = URLDecoder.decode(eq < 0 ? kv : kv.substring(0, eq), StandardCharsets.UTF_8);
                    String v = eq < 0 ? "" : URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8);
                    params.put(k, new String[] {v});
                }
            if ("POST".equals(ex.getRequestMethod()))
                json = handler.handlePostRequest(uri, ex.getRequestBody(), "UTF-8", params);
            else
                json = handler.handleGetRequest(uri, path, params);
        } catch (Throwable t) {
            json = handler.handleThrowable(t);
        }
        try {
            byte[] body = json.toJSONString().getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
            ex.sendResponseHeaders(200, body.length);
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        } catch (Exception e) {
            System.err.println("response failed: " + e);
        } finally {
            ex.close();
        }
    }
}
