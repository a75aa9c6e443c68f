-- The leaderboard's SQLite schema before issue 14 (casebench commit 15894d0): made by creating a database
-- with that commit's casebench/leaderboard/db.py and dumping sqlite_master. tests/test_leaderboard.py opens
-- such a database with today's code (columns added, upload files moved into the database).
CREATE TABLE users (
	id INTEGER NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	is_admin BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_users_username ON users (username);
CREATE TABLE api_tokens (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	prefix VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_used_at DATETIME, 
	revoked BOOLEAN NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE UNIQUE INDEX ix_api_tokens_token_hash ON api_tokens (token_hash);
CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);
CREATE TABLE submissions (
	id INTEGER NOT NULL, 
	board VARCHAR(200) NOT NULL, 
	user_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	attempts INTEGER NOT NULL, 
	score_count INTEGER NOT NULL, 
	claim VARCHAR(64), 
	idempotency_key VARCHAR(100), 
	upload_path VARCHAR(500) NOT NULL, 
	upload_name VARCHAR(255) NOT NULL, 
	upload_sha256 VARCHAR(80) NOT NULL, 
	upload_bytes BIGINT NOT NULL, 
	n_lines INTEGER NOT NULL, 
	model_name VARCHAR(200) NOT NULL, 
	model_revision VARCHAR(200) NOT NULL, 
	model_url VARCHAR(500) NOT NULL, 
	model_parameters BIGINT, 
	trained_on TEXT NOT NULL, 
	description TEXT NOT NULL, 
	zero_shot BOOLEAN NOT NULL, 
	results TEXT, 
	error TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_submission_idempotency UNIQUE (user_id, idempotency_key), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE INDEX ix_submissions_user_id ON submissions (user_id);
CREATE INDEX ix_submissions_status ON submissions (status);
CREATE INDEX ix_submissions_created_at ON submissions (created_at);
CREATE INDEX ix_submissions_board ON submissions (board);
CREATE TABLE phases (
	board VARCHAR(200) NOT NULL, 
	revealed_at DATETIME, 
	revealed_by INTEGER, 
	PRIMARY KEY (board), 
	FOREIGN KEY(revealed_by) REFERENCES users (id)
);
CREATE TABLE comparisons (
	id INTEGER NOT NULL, 
	a_id INTEGER NOT NULL, 
	b_id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	claim VARCHAR(64), 
	p_values TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_comparison_pair UNIQUE (a_id, b_id), 
	FOREIGN KEY(a_id) REFERENCES submissions (id), 
	FOREIGN KEY(b_id) REFERENCES submissions (id)
);
CREATE INDEX ix_comparisons_a_id ON comparisons (a_id);
CREATE INDEX ix_comparisons_status ON comparisons (status);
CREATE INDEX ix_comparisons_b_id ON comparisons (b_id);
