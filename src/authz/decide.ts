import type { Role } from '../store/roles.js';
import type { User } from '../store/users.js';

export type AuthzDenial = 'unknown-user' | 'user-disabled' | 'unknown-role' | 'role-not-granted' | 'no-default-role';
export type AuthzDecision = { ok: true; role: Role } | { ok: false; reason: AuthzDenial };

/**
 * Which role a login gets (pure). `requested` null means the user's default role, or their only
 * granted role when they have exactly one. A role must always be granted, default or not.
 */
export function authorize(input: { user: User | null; requested: string | null; granted: Role[] }): AuthzDecision {
  const { user, requested, granted } = input;
  if (!user) return { ok: false, reason: 'unknown-user' };
  if (user.disabled) return { ok: false, reason: 'user-disabled' };
  if (requested !== null) {
    const role = granted.find((r) => r.name === requested);
    return role ? { ok: true, role } : { ok: false, reason: 'role-not-granted' };
  }
  const byDefault = granted.find((r) => r.id === user.defaultRoleId);
  if (byDefault) return { ok: true, role: byDefault };
  if (granted.length === 1) return { ok: true, role: granted[0]! };
  return { ok: false, reason: 'no-default-role' };
}
