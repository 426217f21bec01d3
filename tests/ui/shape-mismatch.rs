bp::network! {
    struct Net {
        input x: [4];
        let a = linear(x, 128);
        let b = linear(x, 64);
        let c = a + b;
        output c;
    }
}

fn main() {}
