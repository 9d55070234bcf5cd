// The current hash route, and changing its query without re-rendering (filters and selections live in the
// URL so a link can be shared).

export function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/runs';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

export function queryString(query) {
  return query.toString().replace(/%2C/gi, ',');
}

export function replaceQuery(query) {
  const { path } = parseHash();
  const text = queryString(query);
  history.replaceState(null, '', `#${path}${text ? `?${text}` : ''}`);
}
