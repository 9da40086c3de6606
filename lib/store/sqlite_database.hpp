#pragma once

// RAII wrappers over the SQLite C API: a connection, a prepared statement, and a transaction that
// rolls back unless committed. Thin on purpose; every call that can fail returns a Result whose
// message carries SQLite's own text and the file name.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "support/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace vapor::store {

/// One SQLite connection. Movable, not copyable; closed on destruction. One thread at a time.
class Database {
 public:
  enum class Mode { read_write_create, read_only };

  static Result<Database> open(const std::filesystem::path& path, Mode mode);

  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  /// Runs one or more statements that return no rows.
  Result<void> exec(std::string_view sql);
  /// The first column of the first row of `sql` as an integer (e.g. PRAGMA user_version).
  Result<std::int64_t> query_int(std::string_view sql);
  /// The first column of the first row of `sql` as text.
  Result<std::string> query_text(std::string_view sql);

  [[nodiscard]] sqlite3* handle() const { return db_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  /// "<file>: <sqlite message>" for the connection's last error.
  [[nodiscard]] std::string last_error(std::string_view what) const;

 private:
  Database(sqlite3* db, std::string name) : db_(db), name_(std::move(name)) {}
  sqlite3* db_ = nullptr;
  std::string name_;
};

/// A prepared statement, reset after each step cycle. Not copyable.
class Statement {
 public:
  static Result<Statement> prepare(Database& db, std::string_view sql);

  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  void bind(int index, std::int64_t value);
  void bind(int index, double value);  ///< NaN binds as NULL
  void bind(int index, std::string_view value);
  void bind_null(int index);

  /// Steps once: true when a row is available, false when done.
  Result<bool> step();
  /// Steps to completion (for INSERT/UPDATE), then resets and clears bindings.
  Result<void> run();
  void reset();

  [[nodiscard]] std::int64_t column_int(int index) const;
  [[nodiscard]] double column_double(int index) const;  ///< NULL reads as NaN
  [[nodiscard]] std::string column_text(int index) const;
  [[nodiscard]] bool column_is_null(int index) const;

 private:
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Database* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

/// `BEGIN IMMEDIATE` on construction via `begin`; rolls back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Result<void> commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_ = nullptr;
};

}  // namespace vapor::store
