import type { Db } from './db.js';

/** Read-only sharing: which users may watch an owner's session in one role. */
export class ShareRepo {
  constructor(private readonly db: Db) {}

  /** Lets `viewerId` watch (owner, role); sharing twice is a no-op. */
  add(ownerUserId: number, ownerRoleId: number, viewerId: number, now: number): void {
    this.db
      .prepare('INSERT OR IGNORE INTO shares (owner_user_id, owner_role_id, viewer_user_id, created_at) VALUES (?, ?, ?, ?)')
      .run(ownerUserId, ownerRoleId, viewerId, now);
  }

  /** Takes the permission back. */
  remove(ownerUserId: number, ownerRoleId: number, viewerId: number): void {
    this.db.prepare('DELETE FROM shares WHERE owner_user_id = ? AND owner_role_id = ? AND viewer_user_id = ?').run(ownerUserId, ownerRoleId, viewerId);
  }

  /** Names of the users who may watch (owner, role). */
  viewerNames(ownerUserId: number, ownerRoleId: number): string[] {
    const rows = this.db
      .prepare('SELECT u.name FROM shares s JOIN users u ON u.id = s.viewer_user_id WHERE s.owner_user_id = ? AND s.owner_role_id = ?')
      .all(ownerUserId, ownerRoleId) as { name: string }[];
    return rows.map((r) => r.name);
  }

  /** Whether `viewerId` may watch (owner, role). */
  isShared(ownerUserId: number, ownerRoleId: number, viewerId: number): boolean {
    const q = this.db.prepare('SELECT 1 FROM shares WHERE owner_user_id = ? AND owner_role_id = ? AND viewer_user_id = ?');
    return q.get(ownerUserId, ownerRoleId, viewerId) !== undefined;
  }
}
