-- Read-only sharing: the owner of a (role, user) session lets another user watch it.
CREATE TABLE shares (
  owner_user_id  INTEGER NOT NULL,
  owner_role_id  INTEGER NOT NULL,
  viewer_user_id INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (owner_user_id, owner_role_id, viewer_user_id)
);
