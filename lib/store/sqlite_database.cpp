#include "store/sqlite_database.hpp"

#include <sqlite3.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>
#include <utility>

namespace vapor::store {
namespace {

/// The 16 bytes every SQLite 3 database file starts with (the terminating NUL included).
constexpr std::array<char, 16> sqlite_header = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f',
                                                'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};

bool is_in_memory(const std::filesystem::path& path) { return path.native() == ":memory:"; }

/// Checks an existing file before SQLite sees it: it must be a readable regular file that is
/// either empty (SQLite treats that as a new database) or starts with the SQLite header. This
/// keeps SQLite from ever getting a chance to write to a file that is not one of its own.
Result<void> check_existing_file(const std::filesystem::path& path, const std::string& name) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail(name + ": is a directory, not a file");
  if (!std::filesystem::is_regular_file(path, ec)) return fail(name + ": not a regular file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return fail(name + ": cannot read: " + ec.message());

  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return fail(name + ": cannot read: " + std::strerror(errno));
  std::array<char, sqlite_header.size()> header{};
  const std::size_t got = std::fread(header.data(), 1, header.size(), file);
  const bool read_failed = std::ferror(file) != 0;
  std::fclose(file);
  if (read_failed) return fail(name + ": cannot read: I/O error");

  if (size == 0) return {};
  if (got != header.size() || header != sqlite_header) {
    return fail(name + ": file is not a database (it does not start with the SQLite 3 header)");
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Database

Result<Database> Database::open(const std::filesystem::path& path, Mode mode) {
  if (path.empty()) return fail("no database path given");
  const std::string name = path.string();
  int flags = SQLITE_OPEN_NOMUTEX;

  if (is_in_memory(path)) {
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  } else {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    if (ec) return fail(name + ": cannot access: " + ec.message());
    if (exists) {
      if (auto checked = check_existing_file(path, name); !checked) return checked.error();
      flags |= mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    } else {
      if (mode == Mode::read_only) return fail(name + ": no such file");
      const std::filesystem::path parent =
          path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
      if (!std::filesystem::is_directory(parent, ec)) {
        return fail(name + ": cannot create the database: directory " + parent.string() +
                    " does not exist");
      }
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }
  }

  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(name.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message =
        name + ": cannot open: " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return fail(std::move(message));
  }
  if (mode == Mode::read_write_create && sqlite3_db_readonly(db, "main") == 1) {
    sqlite3_close_v2(db);
    return fail(name + ": cannot open for writing (check the file's permissions)");
  }
  return Database(db, name);
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), name_(std::move(other.name_)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

Database::~Database() { sqlite3_close_v2(db_); }

Result<void> Database::exec(std::string_view sql) {
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string error = name_ + ": " + (message != nullptr ? message : sqlite3_errstr(rc));
    sqlite3_free(message);
    return fail(std::move(error));
  }
  return {};
}

Result<std::int64_t> Database::query_int(std::string_view sql) {
  auto statement = Statement::prepare(*this, sql);
  if (!statement) return statement.error();
  auto row = statement->step();
  if (!row) return row.error();
  if (!*row) return fail(name_ + ": no result from " + std::string(sql));
  const std::int64_t value = statement->column_int(0);
  statement->reset();
  return value;
}

Result<std::string> Database::query_text(std::string_view sql) {
  auto statement = Statement::prepare(*this, sql);
  if (!statement) return statement.error();
  auto row = statement->step();
  if (!row) return row.error();
  if (!*row) return fail(name_ + ": no result from " + std::string(sql));
  std::string value = statement->column_text(0);
  statement->reset();
  // Error is constructible from a std::string (C++20 aggregate init), so say which side this is.
  return Result<std::string>(boost::system::in_place_value, std::move(value));
}

std::string Database::last_error(std::string_view what) const {
  std::string message = name_;
  message += ": ";
  if (!what.empty()) {
    message += what;
    message += ": ";
  }
  message += db_ != nullptr ? sqlite3_errmsg(db_) : "no connection";
  return message;
}

// ---------------------------------------------------------------------------------------------
// Statement

Result<Statement> Statement::prepare(Database& db, std::string_view sql) {
  if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return fail(db.name() + ": statement too long");
  }
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return fail(db.last_error("cannot prepare \"" + std::string(sql) + "\""));
  }
  if (stmt == nullptr) return fail(db.name() + ": empty statement");
  return Statement(&db, stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::bind(int index, std::int64_t value) {
  [[maybe_unused]] const int rc = sqlite3_bind_int64(stmt_, index, value);
  assert(rc == SQLITE_OK);
}

void Statement::bind(int index, double value) {
  if (std::isnan(value)) {
    bind_null(index);
    return;
  }
  [[maybe_unused]] const int rc = sqlite3_bind_double(stmt_, index, value);
  assert(rc == SQLITE_OK);
}

void Statement::bind(int index, std::string_view value) {
  // A too-long value leaves the parameter NULL; the statement then fails with a clear message.
  [[maybe_unused]] const int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  assert(rc == SQLITE_OK || rc == SQLITE_TOOBIG);
}

void Statement::bind_null(int index) {
  [[maybe_unused]] const int rc = sqlite3_bind_null(stmt_, index);
  assert(rc == SQLITE_OK);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    reset();
    return false;
  }
  std::string message = db_->last_error("");
  reset();
  return fail(std::move(message));
}

Result<void> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return row.error();
    if (!*row) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

double Statement::column_double(int index) const {
  if (column_is_null(index)) return std::numeric_limits<double>::quiet_NaN();
  return sqlite3_column_double(stmt_, index);
}

std::string Statement::column_text(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return {};
  const int size = sqlite3_column_bytes(stmt_, index);
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

// ---------------------------------------------------------------------------------------------
// Transaction

Result<Transaction> Transaction::begin(Database& db) {
  if (auto begun = db.exec("BEGIN IMMEDIATE"); !begun) return begun.error();
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  // Not committed (or the commit failed): undo whatever is still open. SQLite may already have
  // rolled back by itself after some errors, which leaves the connection in autocommit mode.
  if (db_ != nullptr && sqlite3_get_autocommit(db_->handle()) == 0) {
    sqlite3_exec(db_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Result<void> Transaction::commit() {
  assert(db_ != nullptr && "commit() on a finished transaction");
  if (auto committed = db_->exec("COMMIT"); !committed) return committed.error();
  db_ = nullptr;
  return {};
}

}  // namespace vapor::store
