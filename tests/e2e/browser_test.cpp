// The HTML leaderboard and asg serve in a real browser: Debian's headless Chromium driven over WebDriver
// (chromedriver), with runs of a reduced quickstart. Checks that a header click sorts the table, that the sample
// stickers load from the self-contained page, that a run name holding <script> is shown as text and never run,
// and that a run page's loss curve gains points while the run trains; and that the server answers only GET on
// its routes and never writes the registry.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "asg/hash.h"
#include "asg/registry.h"
#include "asg/files.h"
#include "asg_cli.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using asg::testing::run_asg;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

using asg::testing::spawn;
using asg::testing::stop;

// A WebDriver session in headless Chromium, through chromedriver (both from Debian; scripts/setup.sh installs them).
// The test starts Chromium itself, with its DevTools endpoint on 127.0.0.1, and hands chromedriver that address:
// left to itself, chromedriver reaches the browser at "localhost", which a minimal system (a debootstrap chroot
// without /etc/hosts) cannot resolve.
class Browser {
 public:
  explicit Browser(const fs::path& dir) {
    const int devtools = free_port();
    browser_ = spawn({"/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--window-size=1400,1000", "--remote-debugging-address=127.0.0.1", fmt::format("--remote-debugging-port={}", devtools),
                      "--user-data-dir=" + (dir / "chromium-profile").string(), "about:blank"},
                     dir, dir / "chromium.log");
    httplib::Client probe("127.0.0.1", devtools);
    for (int i = 0; i < 200 && !probe.Get("/json/version"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    port_ = free_port();
    driver_ = spawn({"/usr/bin/chromedriver", fmt::format("--port={}", port_)}, dir, dir / "chromedriver.log");
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(60, 0);
    for (int i = 0; i < 100 && !client_->Get("/status"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const json caps = {{"capabilities",
                        {{"alwaysMatch",
                          {{"browserName", "chrome"}, {"goog:chromeOptions", {{"debuggerAddress", fmt::format("127.0.0.1:{}", devtools)}}}}}}}};
    const json session = call("POST", "/session", caps);
    session_ = session["value"]["sessionId"].get<std::string>();
  }
  ~Browser() {
    if (!session_.empty()) client_->Delete("/session/" + session_);
    stop(driver_);
    stop(browser_);
  }
  bool ok() const { return !session_.empty(); }

  void open(const std::string& url) { call("POST", path("/url"), {{"url", url}}); }
  json run(const std::string& script) { return call("POST", path("/execute/sync"), {{"script", script}, {"args", json::array()}})["value"]; }
  void click(const std::string& css) {
    const json found = call("POST", path("/element"), {{"using", "css selector"}, {"value", css}});
    const std::string element = found["value"].begin().value().get<std::string>();
    call("POST", path("/element/" + element + "/click"), json::object());
  }
  // Polls `script` until it returns true (or `seconds` pass).
  bool wait_for(const std::string& script, int seconds = 20) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (run(script) == json(true)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  std::string path(const std::string& rest) const { return "/session/" + session_ + rest; }
  json call(const std::string& method, const std::string& p, const json& body) {
    auto res = method == "POST" ? client_->Post(p, body.dump(), "application/json") : client_->Get(p);
    if (!res) throw std::runtime_error("chromedriver did not answer " + p);
    json out = json::parse(res->body, nullptr, false);
    if (res->status != 200) throw std::runtime_error(fmt::format("chromedriver {} {}: {}", res->status, p, res->body.substr(0, 500)));
    return out;
  }
  int port_ = 0;
  pid_t browser_ = -1;
  pid_t driver_ = -1;
  std::unique_ptr<httplib::Client> client_;
  std::string session_;
};

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/chromium") || !fs::exists("/usr/bin/chromedriver"))
      GTEST_SKIP() << "Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)";
    dir_ = asg::testing::make_temp_dir("browser");
    std::ofstream(dir_ / "tiny.toml") << asg::testing::reduced_quickstart(
        "plain", "[sampler]\nsteps = 2\n[train]\nsteps = 4\nbatch_size = 4\nlog_every = 1\n[eval]\nnum_samples = 4\nbatch_size = 4\nsave_gifs = 2\n");
    // A name that would run if it were pasted into the page as markup.
    std::ofstream(dir_ / "evil.toml") << "base = [\"tiny.toml\"]\nname = 'evil <script>window.__pwned = 1</script> & \"q\"'\n"
                                         "[train]\nlr = 0.002\n";  // another method, the same protocol
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(BrowserTest, TheHtmlLeaderboardSortsLoadsItsSamplesAndShowsScriptAsText) {
  ASSERT_EQ(run_asg("run tiny.toml", dir_).code, 0);
  ASSERT_EQ(run_asg("run tiny.toml --set runtime.seed=1", dir_).code, 0);
  ASSERT_EQ(run_asg("run evil.toml", dir_).code, 0);
  const auto page = run_asg("leaderboard --benchmark e2e-bench --format html", dir_);
  ASSERT_EQ(page.code, 0) << page.output;
  std::ofstream(dir_ / "board.html") << page.output;
  // Self-contained: nothing is fetched from anywhere.
  EXPECT_EQ(page.output.find("http://"), std::string::npos);
  EXPECT_EQ(page.output.find("https://"), std::string::npos);

  Browser browser(dir_);
  ASSERT_TRUE(browser.ok());
  browser.open("file://" + (dir_ / "board.html").string());
  EXPECT_EQ(browser.run("return typeof window.__pwned;"), "undefined");
  const json names = browser.run("return Array.from(document.querySelectorAll('table.board tbody tr td:nth-child(2)')).map(c => c.textContent);");
  ASSERT_EQ(names.size(), 2u) << names.dump();  // the two seeds of `plain` are one row
  EXPECT_NE(names.dump().find("evil <script>window.__pwned = 1</script> & \\\"q\\\""), std::string::npos) << names.dump();
  // Every sample sticker is an inline image that decodes.
  EXPECT_TRUE(browser.wait_for(
      "return document.images.length >= 4 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0 && "
      "i.getAttribute('src').startsWith('data:image/'));"))
      << browser.run("return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.getAttribute('src').slice(0, 30)]);").dump();
  EXPECT_EQ(browser.run("return document.querySelectorAll('svg.curve polyline').length;"), 2);

  // A click on the n header sorts by it; a second click reverses.
  auto first_n = [&] { return browser.run("return document.querySelector('table.board tbody tr').cells[2].dataset.value;"); };
  browser.click("table.board thead th:nth-child(3)");
  EXPECT_EQ(first_n(), "1");
  EXPECT_EQ(browser.run("return document.querySelector('table.board thead th:nth-child(3)').getAttribute('aria-sort');"), "ascending");
  browser.click("table.board thead th:nth-child(3)");
  EXPECT_EQ(first_n(), "2");
  // By name: "evil ..." before "plain".
  browser.click("table.board thead th:nth-child(2)");
  EXPECT_EQ(browser.run("return document.querySelector('table.board tbody tr').cells[1].dataset.value.slice(0, 4);"), "evil");
  EXPECT_EQ(browser.run("return typeof window.__pwned;"), "undefined");
}

TEST_F(BrowserTest, ServeShowsALiveLossCurveAnswersOnlyGetAndNeverWritesTheRegistry) {
  ASSERT_EQ(run_asg("run evil.toml", dir_).code, 0);
  const fs::path registry = dir_ / "runs" / "registry.sqlite";
  const std::string evil = asg::Registry(registry).list_runs().front().id;

  const pid_t server = spawn({asg::testing::asg_binary().string(), "serve", "--port", "0"}, dir_, dir_ / "serve.log");
  int port = 0;
  for (int i = 0; i < 100 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::smatch m;
    const std::string log = fs::exists(dir_ / "serve.log") ? asg::read_text_file(dir_ / "serve.log") : "";
    if (std::regex_search(log, m, std::regex(R"(at http://127\.0\.0\.1:(\d+)/)"))) port = std::stoi(m[1]);
  }
  ASSERT_GT(port, 0) << asg::read_text_file(dir_ / "serve.log");  // on loopback unless told otherwise
  const std::string base = fmt::format("http://127.0.0.1:{}", port);

  // A run that trains for a long time, logging its loss every step.
  const pid_t training = spawn({asg::testing::asg_binary().string(), "run", "tiny.toml", "--set", "train.steps=100000", "--set",
                                "name=\"live\""},
                               dir_, dir_ / "training.log");
  std::string live;
  for (int i = 0; i < 600 && live.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    asg::Registry reg(registry);
    for (const auto& r : reg.list_runs("", asg::RunStatus::Running))
      if (reg.metric_history(r.id, "train/loss").size() >= 2) live = r.id;
  }
  ASSERT_FALSE(live.empty()) << asg::read_text_file(dir_ / "training.log");

  {
    Browser browser(dir_);
    ASSERT_TRUE(browser.ok());
    browser.open(base + "/runs/" + live);
    EXPECT_EQ(browser.run("return document.getElementById('status').textContent;"), "RUNNING");
    const int before = browser.run("var p = document.querySelector('#curve polyline'); return p ? p.points.numberOfItems : 0;").get<int>();
    // The page itself fetches the curve again while the run trains: no reload here.
    EXPECT_TRUE(browser.wait_for(fmt::format("var p = document.querySelector('#curve polyline'); return !!p && p.points.numberOfItems > {};",
                                             before + 2),
                                 30))
        << before;
    // The leaderboard page and the run page of the run named <script>...: shown, not run.
    browser.open(base + "/runs/" + evil);
    EXPECT_EQ(browser.run("return typeof window.__pwned;"), "undefined");
    EXPECT_NE(browser.run("return document.querySelector('h1').textContent;").get<std::string>().find("<script>window.__pwned"),
              std::string::npos);
    browser.open(base + "/leaderboard/e2e-bench");
    EXPECT_EQ(browser.run("return typeof window.__pwned;"), "undefined");
    EXPECT_TRUE(browser.wait_for("return document.images.length >= 2 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);"));
  }
  stop(training);

  // Only GET, only its routes, only recorded files; and the registry is read, never written.
  const std::string digest = asg::sha256_file(registry);
  httplib::Client http("127.0.0.1", port);
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    httplib::Request req;
    req.method = method;
    req.path = "/runs/" + evil;
    auto res = http.send(req);
    ASSERT_TRUE(res) << method;
    EXPECT_EQ(res->status, 405) << method;
    EXPECT_EQ(res->get_header_value("Allow"), "GET");
  }
  EXPECT_EQ(http.Get("/etc/passwd")->status, 404);
  EXPECT_EQ(http.Get("/files/" + evil + "/../registry.sqlite")->status, 404);
  EXPECT_EQ(http.Get("/files/" + evil + "/config.toml")->status, 200);  // a recorded artifact
  EXPECT_EQ(http.Get("/runs/nope")->status, 404);
  auto page = http.Get("/runs/" + evil);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->body.find("<script>window.__pwned"), std::string::npos);
  EXPECT_NE(page->body.find("&lt;script&gt;window.__pwned = 1&lt;/script&gt; &amp; &quot;q&quot;"), std::string::npos);
  EXPECT_EQ(http.Get("/")->status, 200);
  EXPECT_EQ(http.Get("/leaderboard/e2e-bench")->status, 200);
  auto compare = http.Get("/compare?runs=" + evil + "&runs=" + live.substr(0, 20));  // ids may be abbreviated
  ASSERT_TRUE(compare);
  EXPECT_EQ(compare->status, 200);
  EXPECT_NE(compare->body.find("<h2>Config ("), std::string::npos) << compare->body.substr(0, 2000);
  EXPECT_NE(compare->body.find("<h2>Results ("), std::string::npos);
  EXPECT_EQ(compare->body.find("<script>window.__pwned"), std::string::npos);
  EXPECT_EQ(asg::sha256_file(registry), digest);
  stop(server);
}

}  // namespace
