import type { Sql } from './sql.js';

/** Read-only sharing: which users may watch an owner's session in one role. */
export class ShareRepo {
  constructor(private readonly sql: Sql) {}

  /** Lets `viewerId` watch (owner, role); sharing twice is a no-op. */
  async add(ownerUserId: number, ownerRoleId: number, viewerId: number, now: number): Promise<void> {
    await this.sql.run('INSERT INTO shares (owner_user_id, owner_role_id, viewer_user_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [
      ownerUserId,
      ownerRoleId,
      viewerId,
      now,
    ]);
  }

  /** Takes the permission back. */
  async remove(ownerUserId: number, ownerRoleId: number, viewerId: number): Promise<void> {
    await this.sql.run('DELETE FROM shares WHERE owner_user_id = ? AND owner_role_id = ? AND viewer_user_id = ?', [ownerUserId, ownerRoleId, viewerId]);
  }

  /** Names of the users who may watch (owner, role). */
  async viewerNames(ownerUserId: number, ownerRoleId: number): Promise<string[]> {
    const rows = (await this.sql.all('SELECT u.name FROM shares s JOIN users u ON u.id = s.viewer_user_id WHERE s.owner_user_id = ? AND s.owner_role_id = ?', [
      ownerUserId,
      ownerRoleId,
    ])) as { name: string }[];
    return rows.map((r) => r.name);
  }

  /** Whether `viewerId` may watch (owner, role). */
  async isShared(ownerUserId: number, ownerRoleId: number, viewerId: number): Promise<boolean> {
    const q = 'SELECT 1 FROM shares WHERE owner_user_id = ? AND owner_role_id = ? AND viewer_user_id = ?';
    return (await this.sql.get(q, [ownerUserId, ownerRoleId, viewerId])) !== undefined;
  }
}
